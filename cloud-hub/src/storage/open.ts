/** Chooses the hub's database engine from its configuration. */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { componentLogger, type Logger } from '@citysense/protocol';
import type { Database } from './database.ts';
import { openEmbeddedDatabase } from './embedded.ts';
import { openServerDatabase } from './server.ts';

/** Where the hub keeps its data. */
export interface OpenDatabaseOptions {
  /** `postgres://…` of a PostgreSQL/TimescaleDB server; wins over `dataDir`. */
  databaseUrl?: string | undefined;
  /** Hub data directory; the embedded database lives in `<dataDir>/db`. Neither set: in memory. */
  dataDir?: string | undefined;
  logger?: Logger;
}

/** Opens the server database when `databaseUrl` is set, else embedded TimescaleDB in `<dataDir>/db`. */
export async function openDatabase(options: OpenDatabaseOptions): Promise<Database> {
  const logger = options.logger ?? componentLogger('storage');
  if (options.databaseUrl !== undefined && options.databaseUrl !== '') {
    return openServerDatabase(options.databaseUrl, { logger });
  }
  if (options.dataDir === undefined) {
    logger.warn('no dataDir and no databaseUrl: using an in-memory database, data is lost on exit');
    return openEmbeddedDatabase(undefined, logger);
  }
  const dir = join(options.dataDir, 'db');
  await mkdir(dir, { recursive: true });
  return openEmbeddedDatabase(dir, logger);
}
