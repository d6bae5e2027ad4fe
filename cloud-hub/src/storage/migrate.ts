/**
 * Versioned SQL migrations. Each capability keeps its own in
 * `cloud-hub/src/<capability>/migrations/NNNN_name.sql`; they are applied in
 * numeric order across capabilities, each in its own transaction, and recorded
 * in `schema_migrations` with a checksum so that editing an applied file is
 * caught instead of silently ignored.
 *
 * One file serves every engine. Lines `-- @timescaledb`, `-- @plain` and
 * `-- @all` start a section that runs only with TimescaleDB, only without it,
 * or always (the default before any marker).
 *
 * Because every migration runs inside a transaction, statements that refuse a
 * transaction block are not allowed: create continuous aggregates `WITH NO DATA`
 * (the refresh policy, or `StorageMaintenance` on the embedded engine, fills
 * them) and never call `refresh_continuous_aggregate` from a migration.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CitysenseError, componentLogger, errorMessage, type Logger } from '@citysense/protocol';
import type { Database, Queryable } from './database.ts';

/** One migration file. */
export interface Migration {
  version: number;
  /** `<capability>/<file>`, e.g. `telemetry/0020_telemetry.sql`. */
  name: string;
  /** SHA-256 of the file (line endings normalised). */
  checksum: string;
  /** The whole file, all sections. */
  sql: string;
}

/** Where to look for migrations; tests point it at a temp folder. */
export interface MigrateOptions {
  /** Folder whose `<capability>/migrations/*.sql` are loaded; default `cloud-hub/src`. */
  sourceDir?: string;
}

/** What `migrate` did. */
export interface MigrateResult {
  /** Names of the migrations applied by this call, in order. */
  applied: string[];
  /** Highest applied version after the call (0 when none). */
  version: number;
}

/** The capability folders' parent: `cloud-hub/src`. */
const DEFAULT_SOURCE_DIR = fileURLToPath(new URL('..', import.meta.url));
const FILE_PATTERN = /^(\d{4})_[A-Za-z0-9_-]+\.sql$/;
const SECTION_PATTERN = /^--\s*@(\S+)\s*$/;
/** Advisory lock key serialising migrations between hub processes sharing one server ("city"). */
const MIGRATION_LOCK_KEY = 0x63697479;

/** Loads every `<sourceDir>/<capability>/migrations/NNNN_name.sql`, sorted by version. */
export async function loadMigrations(sourceDir: string = DEFAULT_SOURCE_DIR): Promise<Migration[]> {
  const migrations: Migration[] = [];
  const capabilities = await readdir(sourceDir, { withFileTypes: true });
  for (const capability of capabilities) {
    if (!capability.isDirectory()) continue;
    const folder = join(sourceDir, capability.name, 'migrations');
    let files: string[];
    try {
      files = await readdir(folder);
    } catch (err) {
      if (
        (err as NodeJS.ErrnoException).code === 'ENOENT' ||
        (err as NodeJS.ErrnoException).code === 'ENOTDIR'
      ) {
        continue;
      }
      throw err;
    }
    for (const file of files) {
      if (!file.endsWith('.sql')) continue;
      const match = FILE_PATTERN.exec(file);
      if (match?.[1] === undefined) {
        throw new CitysenseError(
          'CS_ERR_MIGRATION_NAME',
          `Migration ${capability.name}/migrations/${file} is misnamed: use NNNN_name.sql (four-digit version).`,
        );
      }
      const sql = (await readFile(join(folder, file), 'utf8')).replace(/\r\n/g, '\n');
      migrations.push({
        version: Number(match[1]),
        name: `${capability.name}/${file}`,
        checksum: createHash('sha256').update(sql).digest('hex'),
        sql,
      });
    }
  }
  migrations.sort((a, b) => a.version - b.version);
  for (let i = 1; i < migrations.length; i++) {
    const prev = migrations[i - 1];
    const cur = migrations[i];
    if (prev !== undefined && cur !== undefined && prev.version === cur.version) {
      throw new CitysenseError(
        'CS_ERR_MIGRATION_DUPLICATE',
        `Migrations ${prev.name} and ${cur.name} share version ${cur.version}: renumber one of them.`,
      );
    }
  }
  return migrations;
}

/** The part of a migration that applies with (`timescale`) or without TimescaleDB; other lines become blank. */
export function selectSections(sql: string, timescale: boolean, name = 'migration'): string {
  let active = true;
  return sql
    .split('\n')
    .map((line, index) => {
      const marker = SECTION_PATTERN.exec(line.trim());
      if (marker === null) return active ? line : '';
      switch (marker[1]) {
        case 'all':
          active = true;
          break;
        case 'timescaledb':
          active = timescale;
          break;
        case 'plain':
          active = !timescale;
          break;
        default:
          throw new CitysenseError(
            'CS_ERR_MIGRATION_SYNTAX',
            `${name}:${index + 1}: unknown section marker "${line.trim()}"; use -- @timescaledb, -- @plain or -- @all.`,
          );
      }
      return '';
    })
    .join('\n');
}

interface AppliedRow {
  version: number;
  name: string;
  checksum: string;
}

/** Applies pending migrations in version order; throws CS_ERR_MIGRATION_CHANGED if an applied file was edited. */
export async function migrate(
  db: Database,
  logger: Logger = componentLogger('migrate'),
  options: MigrateOptions = {},
): Promise<MigrateResult> {
  const migrations = await loadMigrations(options.sourceDir);
  // Every transaction takes the lock first, so two hubs on one server apply each migration once.
  await db.transaction(async (tx) => {
    await lock(tx);
    await tx.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version int PRIMARY KEY,
      name text NOT NULL,
      checksum text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
  });
  const appliedRows = await db.query<AppliedRow>('SELECT version, name, checksum FROM schema_migrations');
  const applied = new Map(appliedRows.rows.map((row) => [row.version, row]));
  assertUnchanged(migrations, applied);
  const known = new Set(migrations.map((m) => m.version));
  for (const row of applied.values()) {
    if (!known.has(row.version)) {
      logger.warn(
        { version: row.version, name: row.name },
        'applied migration has no file (newer hub version?)',
      );
    }
  }

  const done: string[] = [];
  for (const migration of migrations) {
    if (applied.has(migration.version)) continue;
    const started = performance.now();
    const sql = selectSections(migration.sql, db.features.timescale, migration.name);
    const ran = await db.transaction(async (tx) => {
      await lock(tx);
      const again = await tx.query<AppliedRow>(
        'SELECT version, name, checksum FROM schema_migrations WHERE version = $1',
        [migration.version],
      );
      const concurrent = again.rows[0];
      if (concurrent !== undefined) {
        // Another hub applied it while we waited for the lock.
        assertUnchanged([migration], new Map([[concurrent.version, concurrent]]));
        return false;
      }
      try {
        await tx.exec(sql);
      } catch (err) {
        throw new CitysenseError(
          'CS_ERR_MIGRATION_FAILED',
          `Migration ${migration.name} failed on ${db.features.engine}: ${errorMessage(err)}. ` +
            'Nothing of it was applied; fix the SQL and restart.',
          500,
          { version: migration.version, name: migration.name },
        );
      }
      await tx.query('INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [
        migration.version,
        migration.name,
        migration.checksum,
      ]);
      return true;
    });
    if (ran) {
      done.push(migration.name);
      logger.info(
        { version: migration.version, name: migration.name, ms: Math.round(performance.now() - started) },
        'migration applied',
      );
    }
  }
  const versions = [...applied.keys(), ...migrations.map((m) => m.version)];
  const version = versions.length === 0 ? 0 : Math.max(...versions);
  logger.info(
    { applied: done.length, version, timescale: db.features.timescale },
    'database schema up to date',
  );
  return { applied: done, version };
}

/** Takes the migration lock until the end of the current transaction. */
async function lock(tx: Queryable): Promise<void> {
  await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY]);
}

/** Throws one error listing every applied migration whose file differs from what was applied. */
function assertUnchanged(migrations: Migration[], applied: Map<number, AppliedRow>): void {
  const changed = migrations.filter((m) => {
    const row = applied.get(m.version);
    return row !== undefined && row.checksum !== m.checksum;
  });
  if (changed.length === 0) return;
  throw new CitysenseError(
    'CS_ERR_MIGRATION_CHANGED',
    `Already-applied migration(s) were edited: ${changed.map((m) => m.name).join(', ')}. ` +
      'Never change an applied migration; revert the edit and add a new NNNN_name.sql instead.',
    500,
    { changed: changed.map((m) => ({ version: m.version, name: m.name })) },
  );
}
