/**
 * A PostgreSQL server through a `pg` pool, with TimescaleDB when the server has
 * it. Plain PostgreSQL (14+) works too: migrations then take their `@plain`
 * sections (regular tables, views instead of continuous aggregates).
 */
import { CitysenseError, componentLogger, errorMessage, type Logger } from '@citysense/protocol';
import pg from 'pg';
import type { Database, DatabaseFeatures, QueryResult, Transaction } from './database.ts';

/** `features.engine` of a server with TimescaleDB. */
export const SERVER_TIMESCALE_ENGINE = 'postgresql-timescaledb';
/** `features.engine` of a plain PostgreSQL server. */
export const SERVER_PLAIN_ENGINE = 'postgresql';

/** Tuning for `openServerDatabase`. */
export interface ServerDatabaseOptions {
  /** Pool size; default 10. */
  maxConnections?: number;
  logger?: Logger;
}

const INT8_OID = 20;

/**
 * Per-pool type parsers (not the global `pg.types`, which other code may share):
 * int8 (counts, bigserial ids) as a JS number like the embedded engine; timestamptz
 * as Date and numeric as an exact string, which are pg's defaults.
 */
const typeParsers = {
  getTypeParser(oid: number, format?: 'text' | 'binary'): (value: string) => unknown {
    if (oid === INT8_OID && format !== 'binary') return (value: string) => Number(value);
    return pg.types.getTypeParser(oid, format ?? 'text');
  },
} as pg.CustomTypesConfig;

/** Connects to the server at `url`, enables TimescaleDB when available, and reports what it can do. */
export async function openServerDatabase(
  url: string,
  options: ServerDatabaseOptions = {},
): Promise<Database> {
  const logger = options.logger ?? componentLogger('storage');
  const pool = new pg.Pool({ connectionString: url, max: options.maxConnections ?? 10, types: typeParsers });
  // An idle client losing its connection emits on the pool; without a listener that kills the process.
  pool.on('error', (err) => logger.error({ err: errorMessage(err) }, 'idle database connection failed'));

  let server: string;
  try {
    const res = await pool.query<{ server: string }>(`SELECT current_setting('server_version') AS server`);
    server = res.rows[0]?.server ?? '?';
  } catch (err) {
    await pool.end();
    throw new CitysenseError(
      'CS_ERR_DB_CONNECT',
      `Could not connect to PostgreSQL at ${redact(url)}: ${errorMessage(err)}. Check the database URL and that the server is running.`,
    );
  }

  const timescale = await enableTimescale(pool, logger);
  const features: DatabaseFeatures = Object.freeze({
    timescale: timescale !== undefined,
    engine: timescale === undefined ? SERVER_PLAIN_ENGINE : SERVER_TIMESCALE_ENGINE,
    version: `PostgreSQL ${server}${timescale === undefined ? '' : `, TimescaleDB ${timescale}`}`,
  });
  logger.info({ url: redact(url), version: features.version }, 'database server connected');

  let closing: Promise<void> | undefined;
  return {
    features,
    async query<Row = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<QueryResult<Row>> {
      const res = await pool.query(sql, params);
      return { rows: res.rows as Row[], affectedRows: res.rowCount ?? 0 };
    },
    async exec(sql: string): Promise<void> {
      // Without parameters pg uses the simple query protocol, which accepts several statements.
      await pool.query(sql);
    },
    async transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T> {
      const client = await pool.connect();
      let broken: Error | undefined;
      try {
        await client.query('BEGIN');
        const result = await fn(wrapClient(client));
        await client.query('COMMIT');
        return result;
      } catch (err) {
        try {
          await client.query('ROLLBACK');
        } catch (rollbackErr) {
          // The connection is unusable: destroy it instead of returning it to the pool.
          broken = rollbackErr instanceof Error ? rollbackErr : new Error(String(rollbackErr));
          logger.warn({ err: errorMessage(rollbackErr) }, 'rollback failed; discarding the connection');
        }
        throw err;
      } finally {
        client.release(broken);
      }
    },
    close(): Promise<void> {
      closing ??= pool.end();
      return closing;
    },
  };
}

/** Installs TimescaleDB if the server offers it; returns its version, or undefined on plain PostgreSQL. */
async function enableTimescale(pool: pg.Pool, logger: Logger): Promise<string | undefined> {
  try {
    await pool.query('CREATE EXTENSION IF NOT EXISTS timescaledb');
  } catch (err) {
    logger.warn(
      { reason: errorMessage(err) },
      'TimescaleDB is NOT available on this PostgreSQL server: running on plain PostgreSQL. ' +
        'There are no hypertables, no compression, no retention policies and no continuous aggregates; ' +
        'bucketed reads are computed on the fly from raw rows (slower on large ranges) and old data is never ' +
        'dropped automatically. Install the timescaledb extension (shared_preload_libraries) for production.',
    );
    return undefined;
  }
  const res = await pool.query<{ version: string }>(
    `SELECT extversion AS version FROM pg_extension WHERE extname = 'timescaledb'`,
  );
  return res.rows[0]?.version ?? '?';
}

/** Adapts a checked-out pool client to the storage interface. */
function wrapClient(client: pg.PoolClient): Transaction {
  return {
    async query<Row = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<QueryResult<Row>> {
      const res = await client.query(sql, params);
      return { rows: res.rows as Row[], affectedRows: res.rowCount ?? 0 };
    },
    async exec(sql: string): Promise<void> {
      await client.query(sql);
    },
  };
}

/** The URL without its password, for logs and errors. */
function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return '<unparseable database URL>';
  }
}
