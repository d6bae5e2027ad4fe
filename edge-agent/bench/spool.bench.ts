/**
 * Spool micro-benchmark: appends and reads back 100-byte records, and prints records/s next to
 * a baseline measured in the same run (raw batched write()/pread of the same bytes, no framing,
 * no CRC, no index), so the ratio tells the spool's own overhead on this machine.
 *
 *   node --import tsx edge-agent/bench/spool.bench.ts [records]
 */
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Spool } from '../src/spool/index.ts';

const RECORDS = Number(process.argv[2] ?? 500_000);
const PAYLOAD_BYTES = 100;
const BURST = 1000; // appends in flight at once, as drivers emitting readings would produce

function rate(records: number, ms: number): string {
  return `${Math.round(records / (ms / 1000)).toLocaleString('en-US')} records/s`;
}

async function baseline(dir: string): Promise<{ write: number; read: number }> {
  const frame = PAYLOAD_BYTES + 24;
  const fh = await open(join(dir, 'baseline.bin'), 'w+');
  const buf = Buffer.alloc(frame * BURST, 7);
  let t = performance.now();
  for (let i = 0; i < RECORDS; i += BURST) await fh.write(buf, 0, buf.length, i * frame);
  const write = performance.now() - t;
  t = performance.now();
  for (let i = 0; i < RECORDS; i += BURST) await fh.read(buf, 0, buf.length, i * frame);
  const read = performance.now() - t;
  await fh.close();
  return { write, read };
}

async function spoolRun(dir: string): Promise<{ append: number; appendMany: number; read: number }> {
  const spool = new Spool({ dir: join(dir, 'spool'), maxBytes: 1024 * 1024 * 1024 });
  await spool.open();
  const payload = new Uint8Array(PAYLOAD_BYTES).fill(42);
  let t = performance.now();
  for (let i = 0; i < RECORDS; i += BURST) {
    const burst: Promise<number>[] = [];
    for (let j = 0; j < BURST; j++) burst.push(spool.append(payload));
    await Promise.all(burst);
  }
  const append = performance.now() - t;
  const batch = Array.from({ length: BURST }, () => payload);
  t = performance.now();
  for (let i = 0; i < RECORDS; i += BURST) await spool.appendMany(batch);
  const appendMany = performance.now() - t;
  t = performance.now();
  let from = 1;
  let n = 0;
  for (;;) {
    const records = await spool.read(from, BURST, 1024 * 1024);
    const last = records[records.length - 1];
    if (last === undefined) break;
    n += records.length;
    from = last.id + 1;
  }
  const read = performance.now() - t;
  if (n !== 2 * RECORDS) throw new Error(`read back ${n} records, expected ${2 * RECORDS}`);
  await spool.close();
  return { append, appendMany, read: read / 2 };
}

const dir = await mkdtemp(join(tmpdir(), 'spool-bench-'));
try {
  const base = await baseline(dir);
  const run = await spoolRun(dir);
  const out = [
    `spool, ${RECORDS} records of ${PAYLOAD_BYTES} bytes`,
    `baseline raw write   ${rate(RECORDS, base.write)}`,
    `append (burst ${BURST})   ${rate(RECORDS, run.append)}  ratio ${(base.write / run.append).toFixed(2)}`,
    `appendMany (${BURST})   ${rate(RECORDS, run.appendMany)}  ratio ${(base.write / run.appendMany).toFixed(2)}`,
    `baseline raw pread   ${rate(RECORDS, base.read)}`,
    `read (${BURST}/call)     ${rate(RECORDS, run.read)}  ratio ${(base.read / run.read).toFixed(2)}`,
  ];
  process.stdout.write(`${out.join('\n')}\n`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
