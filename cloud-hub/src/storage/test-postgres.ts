/**
 * Test helper: a throwaway PostgreSQL cluster (initdb into a temp dir, `pg_ctl start`
 * on a free port, trust auth, fsync off). Used by tests that must run the plain
 * PostgreSQL path against a real server; never used by the hub itself.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { chown, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CitysenseError, errorMessage } from '@citysense/protocol';

const run = promisify(execFile);

/** Where Debian/Ubuntu install PostgreSQL server binaries. */
const PG_LIB_DIR = '/usr/lib/postgresql';

/** A running throwaway cluster. */
export interface TestPostgres {
  /** Connection URL for the superuser `postgres`, database `postgres`. */
  url: string;
  /** Stops the server (immediate mode) and deletes its directory. Idempotent. */
  stop(): Promise<void>;
}

/** The bin directory of the newest installed PostgreSQL, or undefined when none is installed. */
export function findPostgresBinDir(): string | undefined {
  if (!existsSync(PG_LIB_DIR)) return undefined;
  const versions = readdirSync(PG_LIB_DIR)
    .filter(
      (v) =>
        existsSync(join(PG_LIB_DIR, v, 'bin', 'initdb')) && existsSync(join(PG_LIB_DIR, v, 'bin', 'pg_ctl')),
    )
    .sort((a, b) => Number.parseFloat(b) - Number.parseFloat(a));
  const newest = versions[0];
  return newest === undefined ? undefined : join(PG_LIB_DIR, newest, 'bin');
}

/** Why PostgreSQL tests cannot run here, or undefined when they can. */
export function postgresUnavailableReason(): string | undefined {
  return findPostgresBinDir() === undefined
    ? `no PostgreSQL server binaries under ${PG_LIB_DIR}/*/bin (install the postgresql package)`
    : undefined;
}

/** Starts a throwaway cluster; the caller must `stop()` it. */
export async function startTestPostgres(): Promise<TestPostgres> {
  const binDir = findPostgresBinDir();
  if (binDir === undefined) {
    throw new CitysenseError('CS_ERR_TEST_POSTGRES_MISSING', postgresUnavailableReason() ?? 'no PostgreSQL');
  }
  const dir = await mkdtemp(join(tmpdir(), 'citysense-pg-'));
  // initdb refuses to run as root: run the server tools as the `postgres` user.
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    const uid = Number((await run('id', ['-u', 'postgres'])).stdout.trim());
    const gid = Number((await run('id', ['-g', 'postgres'])).stdout.trim());
    await chown(dir, uid, gid);
  }
  const tool = async (name: string, args: string[]): Promise<void> => {
    const bin = join(binDir, name);
    const [file, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
    await run(file, argv, { cwd: dir, timeout: 30_000 });
  };
  const dataDir = join(dir, 'data');
  let started = false;
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    if (started) await tool('pg_ctl', ['-D', dataDir, '-m', 'immediate', '-w', 'stop']);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await tool('initdb', [
      '-D',
      dataDir,
      '-A',
      'trust',
      '-U',
      'postgres',
      '-E',
      'UTF8',
      '--no-locale',
      '--no-sync',
    ]);
    const port = await freePort();
    const options = [
      `-p ${port}`,
      `-k ${dir}`,
      '-c listen_addresses=127.0.0.1',
      '-c fsync=off',
      '-c synchronous_commit=off',
      '-c full_page_writes=off',
    ].join(' ');
    await tool('pg_ctl', [
      '-D',
      dataDir,
      '-o',
      options,
      '-l',
      join(dir, 'server.log'),
      '-w',
      '-t',
      '30',
      'start',
    ]);
    started = true;
    return { url: `postgres://postgres@127.0.0.1:${port}/postgres`, stop };
  } catch (err) {
    let cleanup = '';
    try {
      await stop();
    } catch (stopErr) {
      cleanup = ` (cleanup failed too: ${errorMessage(stopErr)})`;
    }
    throw new CitysenseError(
      'CS_ERR_TEST_POSTGRES_START',
      `Could not start a throwaway PostgreSQL in ${dir}: ${errorMessage(err)}${cleanup}`,
    );
  }
}

/** A TCP port that was free a moment ago. */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * True when PostgreSQL tests should be skipped: no server binaries here and not in CI.
 * In CI (`CI` set) a missing PostgreSQL must fail the suite instead, so it is never skipped.
 */
export function shouldSkipPostgres(): boolean {
  return postgresUnavailableReason() !== undefined && !process.env.CI;
}

/** Suite title that says why a PostgreSQL suite is skipped, when it is. */
export function postgresSuiteTitle(title: string): string {
  const reason = postgresUnavailableReason();
  return shouldSkipPostgres() && reason !== undefined ? `${title} (skipped: ${reason})` : title;
}
