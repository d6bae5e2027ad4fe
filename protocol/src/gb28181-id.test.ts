import { describe, expect, it } from 'vitest';
import { formatGbId, isGbId, parseGbId } from './gb28181-id.ts';

describe('GB/T 28181 IDs (Annex D, coding rule A)', () => {
  it('splits an IPC id into its segments, with the SIP domain', () => {
    expect(parseGbId('34020000001320000001')).toMatchObject({
      centre: '34020000',
      province: '34',
      city: '02',
      county: '00',
      basicUnit: '00',
      industry: '00',
      type: '132',
      typeName: 'IPC',
      category: 'peripheral',
      network: '0',
      serial: '000001',
      domain: '3402000000',
    });
    expect(parseGbId('34020000002000000001')).toMatchObject({
      typeName: 'SIP server / platform',
      category: 'platform',
    });
    expect(parseGbId('11010500001187000042')).toMatchObject({
      typeName: 'NVR',
      network: '7',
      networkName: 'Internet',
      serial: '000042',
    });
  });

  it('refuses wrong lengths, non-digits, unknown provinces and type codes with CS_ERR_GB_ID', () => {
    for (const bad of [
      '3402000000132000000',
      '340200000013200000011',
      '3402000000132000000A',
      '99020000001320000001',
      '34020000000990000001',
      '34020000005000000001',
    ]) {
      expect(isGbId(bad)).toBe(false);
      expect(() => parseGbId(bad)).toThrow(expect.objectContaining({ code: 'CS_ERR_GB_ID' }));
    }
  });

  it('builds ids from segments and refuses malformed segments', () => {
    expect(formatGbId({ centre: '34020000', industry: '00', type: '132', network: '0', serial: 7 })).toBe(
      '34020000001320000007',
    );
    expect(() =>
      formatGbId({ centre: '3402', industry: '00', type: '132', network: '0', serial: 7 }),
    ).toThrow(expect.objectContaining({ code: 'CS_ERR_GB_ID' }));
  });
});
