/**
 * Ingest benchmark (`npm run bench:ingest`): N agent processes with the load
 * generator → embedded broker → Sparkplug host → embedded TimescaleDB. Prints the
 * end-to-end committed readings/s, the raw `INSERT ... unnest` ceiling of the same
 * database measured in the same run, their ratio, and the hub's RSS.
 *
 *   BENCH_AGENTS=4 BENCH_READINGS=250000 npm run bench:ingest
 */
import type { ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kill9, spawnCli, terminate } from '../../cli/e2e/processes.ts';
import { startTestHub } from '../src/testing/test-hub.ts';
import { measureInsertCeiling } from './insert-ceiling.ts';

const AGENTS = Number(process.env.BENCH_AGENTS ?? 4);
const PER_AGENT = Number(process.env.BENCH_READINGS ?? 250_000);
const OFFERED_PER_AGENT = Number(process.env.BENCH_RATE ?? 30_000);

const dir = await mkdtemp(join(tmpdir(), 'citysense-bench-'));
const BATCH_ROWS = 10_000;
const hub = await startTestHub({ ingestBatchRows: BATCH_ROWS, ingestBufferRows: 200_000 }, join(dir, 'hub'));
const children: ChildProcess[] = [];
try {
  // Same statement and batch size as the hub's batch writer, on the same database, before the agents start.
  const ceiling = await measureInsertCeiling(hub.hub.db, 300_000, { batchRows: BATCH_ROWS });

  const start = Date.now() - 86_400_000;
  for (let i = 0; i < AGENTS; i++) {
    const { body } = await hub.api<{ token: string }>('POST', '/v1/enrollment-tokens', {
      name: `bench-${i}`,
    });
    const stateDir = join(dir, `agent-${i}`);
    await mkdir(stateDir, { recursive: true });
    const config = join(stateDir, 'agent.json');
    await writeFile(
      config,
      JSON.stringify({
        hubUrl: hub.httpUrl,
        stateDir,
        healthIntervalMs: 5000,
        uplink: { window: 1024 },
        drivers: [
          {
            type: 'load-generator',
            id: 'load',
            options: {
              devices: 20,
              metrics: 50,
              ratePerSecond: OFFERED_PER_AGENT,
              batchSize: 1000,
              limit: PER_AGENT,
              startTime: start + i * 1000,
            },
          },
        ],
      }),
    );
    children.push(
      spawnCli(['agent', '--config', config, '--token', body.token], join(stateDir, 'agent.log'), {
        CITYSENSE_LOG_LEVEL: 'warn',
      }),
    );
  }

  const total = AGENTS * PER_AGENT;
  const committed = () => hub.hub.metrics.readingsCommitted.get();
  let firstAt = 0;
  let peakRss = 0;
  const deadline = Date.now() + 600_000;
  while (committed() < total && Date.now() < deadline) {
    if (!firstAt && committed() > 0) firstAt = performance.now();
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
    await new Promise((r) => setTimeout(r, 20));
  }
  const elapsedS = (performance.now() - firstAt) / 1000;
  const rate = committed() / elapsedS;
  const ratio = rate / ceiling.rowsPerSecond;
  console.log(
    JSON.stringify(
      {
        bench: 'ingest',
        agents: AGENTS,
        readings: committed(),
        expected: total,
        endToEndReadingsPerSecond: Math.round(rate),
        rawInsertCeilingRowsPerSecond: Math.round(ceiling.rowsPerSecond),
        ratio: +ratio.toFixed(2),
        hubPeakRssMiB: Math.round(peakRss / 1048576),
      },
      null,
      2,
    ),
  );
  console.log(
    `end-to-end ${Math.round(rate)} readings/s vs raw insert ${Math.round(ceiling.rowsPerSecond)} rows/s: ratio ${ratio.toFixed(2)} (target ≥ 0.7)`,
  );
  await Promise.all(children.map((c) => terminate(c)));
} finally {
  await Promise.all(children.map((c) => kill9(c)));
  await hub.stop();
  await rm(dir, { recursive: true, force: true });
}
