/**
 * Sensor ledger benchmark (`npm run bench:ledger`), on the embedded database:
 *  1. bulk CSV import of BENCH_ROWS devices (rows/s) through the ledger — code allocation,
 *     duplicate check of proposed rows, hash chain, Ed25519 signature per entry — against
 *     the raw INSERT of the same rows into the same table without any of it (baseline,
 *     same run, same batch size);
 *  2. duplicate-radius look-up latency (p50/p99) over the imported devices;
 *  3. verification time of the resulting chain and device table.
 *
 *   BENCH_ROWS=100000 npm run bench:ledger
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { generateSigningKey } from '@citysense/protocol';
import { pino } from 'pino';
import { readCsv } from '../src/ledger/csv.ts';
import { LedgerService } from '../src/ledger/ledger-service.ts';
import { migrate } from '../src/storage/migrate.ts';
import { openDatabase } from '../src/storage/open.ts';

const ROWS = Number(process.env.BENCH_ROWS ?? 100_000);
const LOOKUPS = Number(process.env.BENCH_LOOKUPS ?? 2000);
/** Beijing's central area, roughly 40 km × 40 km. */
const AREA = { lon: 116.2, lat: 39.75, dLon: 0.47, dLat: 0.36 };

/** Deterministic pseudo-random numbers, so runs compare. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0;

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'citysense-bench-ledger-'));
  const logger = pino({ level: 'warn' });
  const db = await openDatabase({ dataDir: dir, logger });
  try {
    await migrate(db, logger);
    const key = generateSigningKey('ed25519');
    const ledger = new LedgerService({
      db,
      signingKey: () => key,
      centreCode: '11010000',
      duplicateRadiusM: { camera: 50, '*': 20 },
      importMaxRows: ROWS,
      logger,
    });
    const rnd = random(28181);
    const kinds = ['camera', 'camera', 'air-quality', 'noise', 'water-level', 'manhole'];
    const rows = Array.from({ length: ROWS }, (_, i) => ({
      kind: kinds[i % kinds.length] as string,
      ownerAgency: `agency-${i % 17}`,
      poleId: `pole-${i}`,
      longitude: Number((AREA.lon + rnd() * AREA.dLon).toFixed(6)),
      latitude: Number((AREA.lat + rnd() * AREA.dLat).toFixed(6)),
      network: 'fibre',
      dataItems: ['a', 'b'],
      // The existing inventory is filed as active; the last tenth are new proposals (duplicate-checked).
      state: i < ROWS * 0.9 ? 'active' : 'proposed',
    }));
    console.log(`ledger benchmark: ${ROWS} devices, embedded database (${db.features.engine})`);

    // Baseline: the same rows, same table, same batch size, plain INSERT — no codes, chain or checks.
    const baselineStart = performance.now();
    for (let i = 0; i < rows.length; i += 500) {
      const batch = rows.slice(i, i + 500).map((r, k) => ({
        ...r,
        code: `1101000000180${String(i + k).padStart(7, '0')}`,
        stateTimes: { [r.state]: new Date().toISOString() },
      }));
      await db.query(
        `INSERT INTO ledger_devices (code, kind, owner_agency, pole_id, longitude, latitude, network, data_items,
           state, state_times, change_seq)
         SELECT r.code, r.kind, r."ownerAgency", r."poleId", r.longitude, r.latitude, r.network,
           ARRAY(SELECT jsonb_array_elements_text(r."dataItems")), r.state, r."stateTimes", 0
         FROM jsonb_to_recordset($1::jsonb) AS r(code text, kind text, "ownerAgency" text, "poleId" text,
           longitude float8, latitude float8, network text, "dataItems" jsonb, state text, "stateTimes" jsonb)`,
        [JSON.stringify(batch)],
      );
    }
    const baselineS = (performance.now() - baselineStart) / 1000;
    await db.query('TRUNCATE ledger_devices');

    const header = 'kind,ownerAgency,poleId,longitude,latitude,network,dataItems,state';
    const csv = [
      header,
      ...rows.map(
        (r) =>
          `${r.kind},${r.ownerAgency},${r.poleId},${r.longitude},${r.latitude},${r.network},${r.dataItems.join(';')},${r.state}`,
      ),
    ].join('\n');
    const importStart = performance.now();
    const report = await ledger.importCsv(readCsv(Readable.from([csv])), { kind: 'system', id: 'bench' });
    const importS = (performance.now() - importStart) / 1000;
    if (report.failed > 0)
      throw new Error(`import refused rows: ${JSON.stringify(report.errors.slice(0, 3))}`);

    const latencies: number[] = [];
    let found = 0;
    for (let i = 0; i < LOOKUPS; i++) {
      const started = performance.now();
      const near = await ledger.store.nearby({
        kind: 'camera',
        longitude: AREA.lon + rnd() * AREA.dLon,
        latitude: AREA.lat + rnd() * AREA.dLat,
        radiusM: 50,
      });
      latencies.push(performance.now() - started);
      found += near.length;
    }
    latencies.sort((a, b) => a - b);

    const verify = await ledger.verify();
    if (!verify.ok) throw new Error(`chain does not verify: ${JSON.stringify(verify.firstBroken)}`);

    const baselineRate = ROWS / baselineS;
    const importRate = ROWS / importS;
    const fmt = (n: number) => Math.round(n).toLocaleString('en');
    console.log(
      [
        `  raw INSERT, same rows and table (baseline): ${fmt(baselineRate)} rows/s`,
        `  ledger CSV import (codes, duplicate check, chain, Ed25519): ${fmt(importRate)} rows/s` +
          ` = ${(importRate / baselineRate).toFixed(2)}× baseline (${importS.toFixed(1)} s; ${report.flagged} flagged)`,
        `  duplicate-radius look-up over ${fmt(ROWS)} devices (camera, 50 m, ${LOOKUPS} random points):` +
          ` p50 ${percentile(latencies, 0.5).toFixed(2)} ms, p99 ${percentile(latencies, 0.99).toFixed(2)} ms` +
          ` (${(found / LOOKUPS).toFixed(2)} devices found per look-up)`,
        `  chain verification: ${fmt(verify.entries)} entries + ${fmt(verify.devices)} devices in ${(verify.ms / 1000).toFixed(1)} s` +
          ` (${fmt(verify.entries / (verify.ms / 1000))} entries/s)`,
      ].join('\n'),
    );
  } finally {
    await db.close();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
