import { hasCode, type Logger } from '@citysense/protocol';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from './database.ts';
import { StorageMaintenance } from './maintenance.ts';
import { loadMigrations, migrate } from './migrate.ts';
import { openDatabase } from './open.ts';
import { openServerDatabase, SERVER_PLAIN_ENGINE } from './server.ts';
import {
  postgresSuiteTitle,
  shouldSkipPostgres,
  startTestPostgres,
  type TestPostgres,
} from './test-postgres.ts';

interface LogLine {
  level: number;
  msg: string;
}

/** A real pino logger that keeps its lines for assertions. */
function capturingLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = pino(
    { level: 'debug' },
    { write: (line: string) => lines.push(JSON.parse(line) as LogLine) },
  );
  return { logger, lines };
}

describe.skipIf(shouldSkipPostgres())(postgresSuiteTitle('plain PostgreSQL server'), () => {
  let server: TestPostgres;
  let db: Database;
  let lines: LogLine[];

  beforeAll(async () => {
    server = await startTestPostgres();
    const captured = capturingLogger();
    lines = captured.lines;
    db = await openServerDatabase(server.url, { logger: captured.logger });
  });
  afterAll(async () => {
    await db?.close();
    await server?.stop();
  });

  it('runs without TimescaleDB and says so loudly', () => {
    expect(db.features.timescale).toBe(false);
    expect(db.features.engine).toBe(SERVER_PLAIN_ENGINE);
    expect(db.features.version).toMatch(/^PostgreSQL \d+/);
    const warning = lines.find((l) => l.level === 40 && /TimescaleDB is NOT available/.test(l.msg));
    expect(warning?.msg).toMatch(
      /no hypertables, no compression, no retention policies and no continuous aggregates/,
    );
    expect(warning?.msg).toMatch(/computed on the fly/);
  });

  it('lets two hubs migrate at once, each migration applied exactly once', async () => {
    const other = await openServerDatabase(server.url);
    try {
      const [a, b] = await Promise.all([migrate(db), migrate(other)]);
      const all = (await loadMigrations()).map((m) => m.name);
      expect(all).toContain('telemetry/0020_telemetry.sql');
      expect([...a.applied, ...b.applied].sort()).toEqual([...all].sort());
      expect(a.applied.filter((name) => b.applied.includes(name))).toEqual([]);
      expect(a.version).toBe(b.version);
    } finally {
      await other.close();
    }
    expect((await migrate(db)).applied).toEqual([]);
  });

  it('takes the plain sections: regular tables and views instead of continuous aggregates', async () => {
    const ext = await db.query(`SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'`);
    expect(ext.rows).toHaveLength(0);
    const views = await db.query<{ name: string }>(
      `SELECT table_name AS name FROM information_schema.views WHERE table_schema = 'public' ORDER BY 1`,
    );
    expect(views.rows.map((v) => v.name)).toEqual(['node_health_1m', 'readings_1m']);
    const unique = await db.query<{ name: string }>(
      `SELECT indexname AS name FROM pg_indexes WHERE tablename IN ('readings', 'node_health') AND indexdef LIKE 'CREATE UNIQUE%' ORDER BY 1`,
    );
    expect(unique.rows.map((r) => r.name)).toEqual(['node_health_node_time_key', 'readings_series_time_key']);
  });

  it('returns int8 as a number and timestamptz as a Date', async () => {
    const res = await db.query<{ n: unknown; t: unknown }>(`SELECT 12::int8 AS n, now() AS t`);
    expect(res.rows[0]?.n).toBe(12);
    expect(res.rows[0]?.t).toBeInstanceOf(Date);
  });

  it('commits a transaction on success and rolls it back on throw', async () => {
    await db.exec('CREATE TABLE tx_probe (id int)');
    await db.transaction(async (tx) => {
      await tx.query('INSERT INTO tx_probe VALUES ($1)', [1]);
    });
    await expect(
      db.transaction(async (tx) => {
        await tx.query('INSERT INTO tx_probe VALUES ($1)', [2]);
        throw new Error('abort');
      }),
    ).rejects.toThrow('abort');
    const rows = await db.query<{ id: number }>('SELECT id FROM tx_probe');
    expect(rows.rows).toEqual([{ id: 1 }]);
  });

  it('leaves job scheduling to the server: maintenance does nothing', async () => {
    const maintenance = new StorageMaintenance(db);
    await maintenance.start();
    expect(maintenance.active).toBe(false);
    expect(await maintenance.runOnce()).toEqual({ ran: [], failed: [] });
    await maintenance.stop();
  });

  it('is chosen by openDatabase when a database URL is configured', async () => {
    const chosen = await openDatabase({ databaseUrl: server.url, dataDir: '/nonexistent' });
    try {
      expect(chosen.features.engine).toBe(SERVER_PLAIN_ENGINE);
    } finally {
      await chosen.close();
    }
  });

  it('fails with a coded error when the server cannot be reached', async () => {
    const url = new URL(server.url);
    url.pathname = '/no_such_database';
    const err = await openServerDatabase(url.toString()).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(hasCode(err, 'CS_ERR_DB_CONNECT')).toBe(true);
  });
});
