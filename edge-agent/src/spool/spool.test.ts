import { spawn } from 'node:child_process';
import { once } from 'node:events';
import {
  appendFile,
  mkdtemp,
  open,
  readdir,
  readFile,
  rm,
  stat,
  truncate,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hasCode } from '@citysense/protocol';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Spool, type SpoolDropReason, type SpoolOptions, type SpoolRecord } from './index.ts';
import { crashPayload } from './test-fixtures/crash-payload.ts';

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const str = (b: Uint8Array): string => new TextDecoder().decode(b);
/** A 100-byte payload that names its sequence number. */
const reading = (n: number): Uint8Array => text(`reading-${n}`.padEnd(100, '.'));

let dir: string;
const opened: Spool[] = [];

async function openSpool(options: Partial<SpoolOptions> = {}): Promise<Spool> {
  const spool = new Spool({ dir, ...options });
  await spool.open();
  opened.push(spool);
  return spool;
}

async function readAll(spool: Spool): Promise<SpoolRecord[]> {
  const out: SpoolRecord[] = [];
  let from = 1;
  for (;;) {
    const batch = await spool.read(from, 1000, 1 << 20);
    const last = batch[batch.length - 1];
    if (last === undefined) return out;
    out.push(...batch);
    from = last.id + 1;
  }
}

async function segmentFiles(): Promise<string[]> {
  return (await readdir(dir)).filter((name) => name.endsWith('.seg')).sort();
}

async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(hasCode(err, code), `expected ${code}, got ${String(err)}`).toBe(true);
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'citysense-spool-'));
});

afterEach(async () => {
  for (const spool of opened.splice(0)) await spool.close();
  await rm(dir, { recursive: true, force: true });
});

describe('append, read, ack', () => {
  it('hands out ids 1, 2, 3... in call order and reads records back in order', async () => {
    const spool = await openSpool();
    const single = await Promise.all([0, 1, 2, 3, 4].map((n) => spool.append(reading(n))));
    const many = await spool.appendMany([5, 6, 7, 8, 9].map(reading));
    expect(single).toEqual([1, 2, 3, 4, 5]);
    expect(many).toEqual([6, 7, 8, 9, 10]);

    const all = await spool.read(1, 100, 1 << 20);
    expect(all.map((r) => r.id)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(all.map((r) => str(r.payload))).toEqual(
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((n) => str(reading(n))),
    );
    expect((await spool.read(4, 3, 1 << 20)).map((r) => r.id)).toEqual([4, 5, 6]);
    // Byte limit: two 100-byte payloads fit in 250 bytes; the first record always comes.
    expect((await spool.read(1, 100, 250)).map((r) => r.id)).toEqual([1, 2]);
    expect((await spool.read(1, 100, 1)).map((r) => r.id)).toEqual([1]);
    expect(await spool.read(11, 100, 1 << 20)).toEqual([]);
  });

  it('keeps concurrent appends in call order across group commits', async () => {
    const spool = await openSpool({ segmentBytes: 4096 });
    const ids = await Promise.all(Array.from({ length: 2000 }, (_, n) => spool.append(reading(n))));
    expect(ids).toEqual(Array.from({ length: 2000 }, (_, n) => n + 1));
    const all = await readAll(spool);
    expect(all.map((r) => str(r.payload))).toEqual(Array.from({ length: 2000 }, (_, n) => str(reading(n))));
  });

  it('no longer returns acked records, and accepts out-of-order, duplicate and unknown acks', async () => {
    const spool = await openSpool();
    await spool.appendMany(Array.from({ length: 20 }, (_, n) => reading(n)));
    await spool.ack([{ first: 15, last: 17 }]); // the hub committed later records first
    await spool.ack([
      { first: 5, last: 5 },
      { first: 1, last: 3 },
    ]);
    await spool.ack([
      { first: 2, last: 2 }, // already acked
      { first: 100, last: 200 }, // never appended
    ]);
    expect(spool.firstUnackedId()).toBe(4);
    const ids = (await spool.read(1, 100, 1 << 20)).map((r) => r.id);
    expect(ids).toEqual([4, 6, 7, 8, 9, 10, 11, 12, 13, 14, 18, 19, 20]);
    expect(spool.stats().records).toBe(13);

    await spool.ack([{ first: 4, last: 4 }]);
    expect(spool.firstUnackedId()).toBe(6);
    await spool.ack([{ first: 1, last: 20 }]);
    expect(spool.firstUnackedId()).toBeNull();
    expect(spool.stats()).toMatchObject({ records: 0, firstId: null, oldestAppendedAt: null, lastId: 20 });
    // Ids above the last appended one stay unacked: they are not "known" yet.
    expect(await spool.append(reading(20))).toBe(21);
    expect(spool.firstUnackedId()).toBe(21);
  });

  it('continues ids after reopen and remembers acks, including out-of-order ones', async () => {
    const first = await openSpool();
    await first.appendMany(Array.from({ length: 10 }, (_, n) => reading(n)));
    await first.ack([
      { first: 1, last: 3 },
      { first: 7, last: 8 },
    ]);
    await first.close();

    const second = await openSpool();
    expect((await second.read(1, 100, 1 << 20)).map((r) => r.id)).toEqual([4, 5, 6, 9, 10]);
    expect(await second.append(reading(10))).toBe(11);
    await second.ack([{ first: 1, last: 11 }]);
    await second.close();

    const third = await openSpool();
    expect(await third.read(1, 100, 1 << 20)).toEqual([]);
    expect(await third.append(reading(11))).toBe(12);
  });

  it('deletes a segment once every record in it is acked', async () => {
    const spool = await openSpool({ segmentBytes: 1024 }); // 8 records of 124 bytes per segment
    await spool.appendMany(Array.from({ length: 80 }, (_, n) => reading(n)));
    expect(await segmentFiles()).toHaveLength(10);
    const bytesBefore = spool.stats().bytes;

    await spool.ack([{ first: 9, last: 40 }]); // segments 2-5, out of order
    await spool.ack([{ first: 1, last: 7 }]); // segment 1 but for id 8: it must stay
    await spool.close();
    const files = await segmentFiles();
    expect(files).toHaveLength(6);
    expect(files[0]).toBe('00000000000000000001.seg');
    expect(files[1]).toBe('00000000000000000041.seg');

    const reopened = await openSpool({ segmentBytes: 1024 });
    expect((await reopened.read(1, 3, 1 << 20)).map((r) => r.id)).toEqual([8, 41, 42]);
    expect(reopened.stats().bytes).toBeLessThan(bytesBefore);
    expect(reopened.stats().records).toBe(41);
  });

  it('reports records, bytes, the oldest unacked record and the last id', async () => {
    const spool = await openSpool();
    expect(spool.stats()).toEqual({
      records: 0,
      bytes: 0,
      oldestAppendedAt: null,
      droppedRecords: 0,
      corruptions: 0,
      firstId: null,
      lastId: 0,
    });
    const before = Date.now();
    await spool.appendMany([reading(0), reading(1), reading(2)]);
    const after = Date.now();
    const stats = spool.stats();
    expect(stats).toMatchObject({ records: 3, bytes: 3 * 124, firstId: 1, lastId: 3 });
    expect(stats.oldestAppendedAt).toBeGreaterThanOrEqual(before);
    expect(stats.oldestAppendedAt).toBeLessThanOrEqual(after);
    await spool.ack([{ first: 1, last: 1 }]);
    expect(spool.stats()).toMatchObject({ records: 2, firstId: 2 });
  });

  it('rejects records larger than a segment, and use before open', async () => {
    const spool = new Spool({ dir, segmentBytes: 1024 });
    await expectCode(spool.append(reading(0)), 'CS_ERR_SPOOL_CLOSED');
    await spool.open();
    await spool.open(); // idempotent
    opened.push(spool);
    await expectCode(spool.append(new Uint8Array(1001)), 'CS_ERR_SPOOL_RECORD_TOO_LARGE');
    expect(await spool.append(new Uint8Array(1000))).toBe(1); // 1000 + 24-byte header fits exactly
    await spool.close();
    await spool.close(); // idempotent
    await expectCode(spool.append(reading(1)), 'CS_ERR_SPOOL_CLOSED');
  });
});

describe('crash safety', () => {
  it('keeps every record a SIGKILLed writer saw acknowledged, intact, contiguous, without duplicates', async () => {
    const script = fileURLToPath(new URL('./test-fixtures/crash-appender.ts', import.meta.url));
    const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', script, dir], {
      cwd: repoRoot,
      env: { ...process.env, CITYSENSE_LOG_LEVEL: 'silent' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = once(child, 'exit');
    let output = '';
    await new Promise<void>((resolve, reject) => {
      child.on('error', reject);
      child.on('exit', (code) => reject(new Error(`crash-appender exited early with ${String(code)}`)));
      child.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        // Kill mid-stream once thousands of records (and several segment rolls) are behind it.
        if (output.split('\n').length > 5000) resolve();
      });
    });
    child.kill('SIGKILL');
    const [, signal] = await exited;
    expect(signal).toBe('SIGKILL');

    const complete = output.slice(0, output.lastIndexOf('\n')).split('\n');
    expect(complete.shift()).toBe('ready');
    const reported = complete.map((line) => line.split(' ').map(Number) as [number, number]);
    expect(reported.length).toBeGreaterThan(4000);

    const spool = await openSpool({ segmentBytes: 64 * 1024 });
    const records = await readAll(spool);
    const byId = new Map(records.map((r) => [r.id, r]));
    for (const [id, seq] of reported) {
      const record = byId.get(id);
      if (id % 3 === 0 && record === undefined) continue; // acked by the child: may be gone
      expect(record, `record ${id} reported by the child`).toBeDefined();
      expect(str(record?.payload ?? new Uint8Array())).toBe(str(crashPayload(seq)));
    }
    // No duplicate, in order, contiguous apart from acked ids, every payload intact.
    const ids = records.map((r) => r.id);
    for (let i = 1; i < ids.length; i++) {
      const prev = ids[i - 1] as number;
      const id = ids[i] as number;
      expect(id).toBeGreaterThan(prev);
      for (let gap = prev + 1; gap < id; gap++) expect(gap % 3).toBe(0);
    }
    for (const record of records) expect(str(record.payload)).toBe(str(crashPayload(record.id - 1)));
    const lastId = spool.stats().lastId;
    expect(lastId).toBeGreaterThanOrEqual(Math.max(...reported.map(([id]) => id)));
    // Same boot, nothing lost: ids simply continue.
    expect(await spool.append(text('after the crash'))).toBe(lastId + 1);
  });

  it('recovers every complete record when the last segment ends in a torn record', async () => {
    const spool = await openSpool();
    await spool.appendMany(Array.from({ length: 100 }, (_, n) => reading(n)));
    await spool.close();
    const [file] = await segmentFiles();
    const path = join(dir, file ?? '');
    await truncate(path, (await stat(path)).size - 50); // cut the last record in half

    const reopened = await openSpool();
    const records = await readAll(reopened);
    expect(records.map((r) => r.id)).toEqual(Array.from({ length: 99 }, (_, n) => n + 1));
    expect(records.map((r) => str(r.payload))).toEqual(Array.from({ length: 99 }, (_, n) => str(reading(n))));
    expect(reopened.stats()).toMatchObject({ records: 99, corruptions: 1 });
    const id = await reopened.append(reading(100));
    expect(await reopened.read(id, 1, 1000)).toMatchObject([{ id }]);
  });

  it('recovers every complete record when garbage follows the last one', async () => {
    const spool = await openSpool();
    await spool.appendMany(Array.from({ length: 100 }, (_, n) => reading(n)));
    await spool.close();
    const [file] = await segmentFiles();
    await appendFile(
      join(dir, file ?? ''),
      Buffer.from('\x10\x00\x00\x00garbage that is not a spool record'),
    );

    const reopened = await openSpool();
    expect((await readAll(reopened)).map((r) => r.id)).toEqual(Array.from({ length: 100 }, (_, n) => n + 1));
    expect(reopened.stats().corruptions).toBe(1);
  });

  it('skips the rest of a segment corrupted mid-file and keeps serving the others', async () => {
    const spool = await openSpool({ segmentBytes: 1024 });
    await spool.appendMany(Array.from({ length: 24 }, (_, n) => reading(n))); // 3 segments of 8
    await spool.close();
    const [first] = await segmentFiles();
    const fh = await open(join(dir, first ?? ''), 'r+');
    await fh.write(Buffer.from('XXXX'), 0, 4, 3 * 124 + 40); // inside the payload of record 4
    await fh.close();

    const reopened = await openSpool({ segmentBytes: 1024 });
    const ids = (await readAll(reopened)).map((r) => r.id);
    expect(ids).toEqual([1, 2, 3, ...Array.from({ length: 16 }, (_, n) => n + 9)]);
    expect(reopened.stats()).toMatchObject({ records: 19, corruptions: 1, lastId: 24 });
    expect(await reopened.append(reading(24))).toBe(25);
  });

  it('skips a record that fails its CRC on read instead of failing the read', async () => {
    const spool = await openSpool();
    await spool.appendMany(Array.from({ length: 5 }, (_, n) => reading(n)));
    const drops: Array<[number, SpoolDropReason]> = [];
    spool.on('dropped', (count, reason) => drops.push([count, reason]));
    const [file] = await segmentFiles();
    const fh = await open(join(dir, file ?? ''), 'r+');
    await fh.write(Buffer.from('X'), 0, 1, 124 + 60); // disk corruption under a running spool
    await fh.close();

    expect((await spool.read(1, 100, 1 << 20)).map((r) => r.id)).toEqual([1, 3, 4, 5]);
    expect(drops).toEqual([[1, 'corrupt']]);
    expect(spool.stats()).toMatchObject({ records: 4, corruptions: 1 });
  });

  it('replays every record when the ack state file is garbage', async () => {
    const spool = await openSpool();
    await spool.appendMany(Array.from({ length: 10 }, (_, n) => reading(n)));
    await spool.ack([{ first: 1, last: 6 }]);
    await spool.close();
    await writeFile(join(dir, 'spool.state'), '{"v":1,"head":"oops');

    const reopened = await openSpool();
    expect((await readAll(reopened)).map((r) => r.id)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(await reopened.append(reading(10))).toBe(11);
  });

  it('never reuses ids after a reboot that followed an unclean stop', async () => {
    const spool = await openSpool();
    await spool.appendMany([reading(0), reading(1), reading(2)]);
    await spool.close();
    // What the state file looks like after a power loss: written by a running spool on an
    // earlier boot. Ids above the last record on disk may have reached the hub before the crash.
    const path = join(dir, 'spool.state');
    const state = JSON.parse(await readFile(path, 'utf8')) as { reservedThrough: number };
    await writeFile(path, JSON.stringify({ ...state, clean: false, bootId: 'an-earlier-boot' }));

    const reopened = await openSpool();
    expect((await readAll(reopened)).map((r) => r.id)).toEqual([1, 2, 3]);
    expect(await reopened.append(reading(3))).toBe(state.reservedThrough + 1);
  });
});

describe('bound', () => {
  it('drop-oldest drops the oldest segments, counts them and persists the count', async () => {
    const options = { maxBytes: 4096, segmentBytes: 1024, policy: 'drop-oldest' } as const;
    const spool = await openSpool(options);
    let droppedEvents = 0;
    spool.on('dropped', (count, reason) => {
      expect(reason).toBe('drop-oldest');
      droppedEvents += count;
    });
    for (let n = 0; n < 100; n++) await spool.append(reading(n));

    const stats = spool.stats();
    expect(stats.bytes).toBeLessThanOrEqual(4096);
    expect(stats.droppedRecords).toBeGreaterThan(0);
    expect(droppedEvents).toBe(stats.droppedRecords);
    expect(stats.droppedRecords + stats.records).toBe(100);
    const records = await readAll(spool);
    expect(records[0]?.id).toBe(stats.droppedRecords + 1); // the oldest went first
    expect(records.map((r) => r.id)).toEqual(
      Array.from({ length: stats.records }, (_, n) => n + 1 + stats.droppedRecords),
    );
    await spool.close();

    const reopened = await openSpool(options);
    expect(reopened.stats()).toMatchObject({ droppedRecords: stats.droppedRecords, records: stats.records });
  });

  it('drop-oldest does not count records that were already acked', async () => {
    const spool = await openSpool({ maxBytes: 2048, segmentBytes: 1024 });
    await spool.appendMany(Array.from({ length: 16 }, (_, n) => reading(n))); // 2 full segments
    await spool.ack([{ first: 2, last: 3 }]);
    await spool.append(reading(16)); // needs room: the first segment (6 unacked of 8) goes
    expect(spool.stats()).toMatchObject({ droppedRecords: 6, firstId: 9, records: 9 });
  });

  it('reject-new refuses appends with CS_ERR_SPOOL_FULL and counts them until acks make room', async () => {
    const spool = await openSpool({ maxBytes: 2048, segmentBytes: 1024, policy: 'reject-new' });
    const drops: Array<[number, SpoolDropReason]> = [];
    spool.on('dropped', (count, reason) => drops.push([count, reason]));
    await spool.appendMany(Array.from({ length: 16 }, (_, n) => reading(n)));
    await expectCode(spool.append(reading(16)), 'CS_ERR_SPOOL_FULL');
    await expectCode(spool.appendMany([reading(16), reading(17)]), 'CS_ERR_SPOOL_FULL');
    expect(spool.stats()).toMatchObject({ droppedRecords: 3, records: 16, lastId: 16 });
    expect(drops).toEqual([
      [1, 'reject-new'],
      [2, 'reject-new'],
    ]);

    await spool.ack([{ first: 1, last: 8 }]);
    expect(await spool.append(reading(16))).toBe(17);
    expect((await readAll(spool)).map((r) => r.id)).toEqual([9, 10, 11, 12, 13, 14, 15, 16, 17]);
  });
});
