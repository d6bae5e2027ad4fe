import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasCode } from '@citysense/protocol';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Database } from './database.ts';
import { openEmbeddedDatabase } from './embedded.ts';
import { loadMigrations, migrate, selectSections } from './migrate.ts';

/** Rejection with a CitysenseError carrying `code`. */
async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(hasCode(err, code), `expected ${code}, got ${String(err)}`).toBe(true);
}

describe('migration sections', () => {
  const sql = [
    'CREATE TABLE a ();',
    '-- @timescaledb',
    'SELECT ts();',
    '-- @plain',
    'SELECT plain();',
    '-- @all',
    'SELECT b();',
  ].join('\n');

  it('keeps the TimescaleDB section and drops the plain one on TimescaleDB', () => {
    const out = selectSections(sql, true);
    expect(out).toContain('CREATE TABLE a');
    expect(out).toContain('SELECT ts()');
    expect(out).not.toContain('plain()');
    expect(out).toContain('SELECT b()');
  });

  it('keeps the plain section and drops the TimescaleDB one on plain PostgreSQL', () => {
    const out = selectSections(sql, false);
    expect(out).not.toContain('ts()');
    expect(out).toContain('SELECT plain()');
    expect(out).toContain('SELECT b()');
  });

  it('keeps line numbers so that database errors point at the right line', () => {
    expect(selectSections(sql, false).split('\n')).toHaveLength(sql.split('\n').length);
  });

  it('rejects an unknown marker instead of running its section everywhere', () => {
    expect(() => selectSections('-- @timescale\nSELECT 1;', true, 'x/0001_x.sql')).toThrowError(
      /0001_x.sql:1/,
    );
  });

  it('treats a comment that only mentions @something as SQL', () => {
    expect(selectSections('-- @see PROTOCOLS.md for details\nSELECT 1;', true)).toContain('SELECT 1');
  });
});

const tempDirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'citysense-mig-'));
  tempDirs.push(dir);
  return dir;
}
afterAll(async () => {
  await Promise.all(tempDirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe('migration files', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await tempDir();
  });

  it('finds the hub migrations in every capability folder, in version order', async () => {
    const migrations = await loadMigrations();
    const names = migrations.map((m) => m.name);
    expect(names).toContain('telemetry/0020_telemetry.sql');
    const versions = migrations.map((m) => m.version);
    expect(versions).toEqual([...versions].sort((a, b) => a - b));
  });

  it('orders across capabilities by number, not by folder', async () => {
    await mkdir(join(dir, 'zeta', 'migrations'), { recursive: true });
    await mkdir(join(dir, 'alpha', 'migrations'), { recursive: true });
    await writeFile(join(dir, 'zeta', 'migrations', '0001_first.sql'), 'SELECT 1;');
    await writeFile(join(dir, 'alpha', 'migrations', '0002_second.sql'), 'SELECT 2;');
    await writeFile(join(dir, 'alpha', 'migrations', 'README.md'), 'not a migration');
    expect((await loadMigrations(dir)).map((m) => m.name)).toEqual([
      'zeta/0001_first.sql',
      'alpha/0002_second.sql',
    ]);
  });

  it('rejects a misnamed file', async () => {
    await mkdir(join(dir, 'a', 'migrations'), { recursive: true });
    await writeFile(join(dir, 'a', 'migrations', '1_oops.sql'), 'SELECT 1;');
    await expectCode(loadMigrations(dir), 'CS_ERR_MIGRATION_NAME');
  });

  it('rejects two files with the same version', async () => {
    await mkdir(join(dir, 'a', 'migrations'), { recursive: true });
    await mkdir(join(dir, 'b', 'migrations'), { recursive: true });
    await writeFile(join(dir, 'a', 'migrations', '0005_a.sql'), 'SELECT 1;');
    await writeFile(join(dir, 'b', 'migrations', '0005_b.sql'), 'SELECT 1;');
    await expectCode(loadMigrations(dir), 'CS_ERR_MIGRATION_DUPLICATE');
  });
});

describe('migrate on embedded TimescaleDB', () => {
  let db: Database;
  let dir: string;
  let n = 0;
  const write = (file: string, sql: string) => writeFile(join(dir, 'cap', 'migrations', file), sql);

  beforeAll(async () => {
    db = await openEmbeddedDatabase(undefined);
  });
  afterAll(async () => {
    await db.close();
  });
  beforeEach(async () => {
    n++;
    dir = await tempDir();
    await mkdir(join(dir, 'cap', 'migrations'), { recursive: true });
    await db.exec('DROP TABLE IF EXISTS schema_migrations');
  });

  it('applies pending migrations once and records them', async () => {
    await write('0001_a.sql', `CREATE TABLE t${n}a (id int);`);
    await write('0002_b.sql', `INSERT INTO t${n}a VALUES (1);`);
    expect((await migrate(db, undefined, { sourceDir: dir })).applied).toEqual([
      'cap/0001_a.sql',
      'cap/0002_b.sql',
    ]);
    const again = await migrate(db, undefined, { sourceDir: dir });
    expect(again).toEqual({ applied: [], version: 2 });
    const rows = await db.query<{ c: number }>(`SELECT count(*)::int AS c FROM t${n}a`);
    expect(rows.rows[0]?.c).toBe(1);
    const recorded = await db.query<{ version: number; name: string }>(
      'SELECT version, name FROM schema_migrations ORDER BY version',
    );
    expect(recorded.rows).toEqual([
      { version: 1, name: 'cap/0001_a.sql' },
      { version: 2, name: 'cap/0002_b.sql' },
    ]);
  });

  it('runs only the TimescaleDB section here', async () => {
    await write(
      '0001_s.sql',
      `-- @timescaledb\nCREATE TABLE ts${n} (id int);\n-- @plain\nCREATE TABLE plain${n} (id int);\n`,
    );
    await migrate(db, undefined, { sourceDir: dir });
    const tables = await db.query<{ name: string }>(
      `SELECT table_name AS name FROM information_schema.tables WHERE table_name IN ('ts${n}', 'plain${n}')`,
    );
    expect(tables.rows.map((r) => r.name)).toEqual([`ts${n}`]);
  });

  it('reports an edited applied migration and applies nothing after it', async () => {
    await write('0001_a.sql', `CREATE TABLE e${n} (id int);`);
    await migrate(db, undefined, { sourceDir: dir });
    await write('0001_a.sql', `CREATE TABLE e${n} (id int, extra text);`);
    await write('0002_b.sql', `CREATE TABLE e${n}b (id int);`);
    await expectCode(migrate(db, undefined, { sourceDir: dir }), 'CS_ERR_MIGRATION_CHANGED');
    const pending = await db.query(`SELECT 1 FROM information_schema.tables WHERE table_name = 'e${n}b'`);
    expect(pending.rows).toHaveLength(0);
  });

  it('rolls a failing migration back completely and does not record it', async () => {
    await write('0001_bad.sql', `CREATE TABLE f${n} (id int);\nSELECT no_such_function();`);
    await expectCode(migrate(db, undefined, { sourceDir: dir }), 'CS_ERR_MIGRATION_FAILED');
    const table = await db.query(`SELECT 1 FROM information_schema.tables WHERE table_name = 'f${n}'`);
    expect(table.rows).toHaveLength(0);
    const recorded = await db.query('SELECT 1 FROM schema_migrations');
    expect(recorded.rows).toHaveLength(0);
  });

  it('creates a continuous aggregate WITH NO DATA and its policy inside the migration transaction', async () => {
    await write(
      '0001_cagg.sql',
      `CREATE TABLE c${n} (time timestamptz NOT NULL, v float8);
SELECT create_hypertable('c${n}', 'time');
INSERT INTO c${n} VALUES (now() - interval '10 minutes', 4);
CREATE MATERIALIZED VIEW c${n}_1m WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
  SELECT time_bucket(INTERVAL '1 minute', time) AS bucket, avg(v) AS avg FROM c${n} GROUP BY 1 WITH NO DATA;
SELECT add_continuous_aggregate_policy('c${n}_1m', start_offset => INTERVAL '1 day', end_offset => INTERVAL '1 minute', schedule_interval => INTERVAL '1 minute');`,
    );
    await migrate(db, undefined, { sourceDir: dir });
    const rows = await db.query<{ avg: number }>(`SELECT avg FROM c${n}_1m`);
    expect(rows.rows).toEqual([{ avg: 4 }]);
  });
});
