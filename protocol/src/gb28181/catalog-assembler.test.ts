import iconv from 'iconv-lite';
import { describe, expect, it } from 'vitest';
import { hasCode } from '../errors.ts';
import { CatalogAssembler } from './catalog-assembler.ts';
import { decodeManscdp } from './decode.ts';
import type { CatalogResponse } from './types.ts';

const NVR = '34020000001180000001';
const cam = (n: number) => `3402000000132000000${n}`;

function page(sn: number, names: Array<[number, string]>, deviceId = NVR): CatalogResponse {
  const items = names
    .map(([n, name]) => `<Item><DeviceID>${cam(n)}</DeviceID><Name>${name}</Name><Status>ON</Status></Item>`)
    .join('');
  const xml = `<?xml version="1.0" encoding="GB2312"?><Response><CmdType>Catalog</CmdType><SN>${sn}</SN><DeviceID>${deviceId}</DeviceID><SumNum>3</SumNum><DeviceList Num="${names.length}">${items}</DeviceList></Response>`;
  const message = decodeManscdp(new Uint8Array(iconv.encode(xml, 'GB2312')));
  if (message.kind !== 'catalog') throw new Error('not a catalog page');
  return message;
}

describe('CatalogAssembler (paged Catalog, GB/T 28181 §9.5.2)', () => {
  it('completes once SumNum distinct items arrived over two pages, one with a single Item', () => {
    const single = page(9, [[3, '长安街东口球机']]);
    expect(single.items).toHaveLength(1);
    const assembler = new CatalogAssembler(NVR, 9);
    assembler.add(single);
    expect(assembler.complete).toBe(false);
    assembler.add(single);
    expect(assembler.complete).toBe(false);
    assembler.add(
      page(9, [
        [1, '西单北口枪机'],
        [2, '东单南口'],
      ]),
    );
    expect(assembler.complete).toBe(true);
    expect(assembler.sumNum).toBe(3);
    expect(assembler.items.map((i) => i.name)).toEqual(['长安街东口球机', '西单北口枪机', '东单南口']);
  });

  it('refuses a page of another SN or another device', () => {
    const assembler = new CatalogAssembler(NVR, 9);
    for (const wrong of [page(10, [[1, 'a']]), page(9, [[1, 'a']], '34020000001180000002')]) {
      let thrown: unknown;
      try {
        assembler.add(wrong);
      } catch (err) {
        thrown = err;
      }
      expect(hasCode(thrown, 'CS_ERR_MANSCDP_CATALOG_MISMATCH')).toBe(true);
    }
    expect(assembler.items).toEqual([]);
  });
});
