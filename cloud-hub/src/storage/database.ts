/**
 * The storage boundary of the hub. Two implementations: embedded TimescaleDB
 * (PGlite fork, in-process) and a PostgreSQL/TimescaleDB server through `pg`.
 * Everything above this interface runs the same SQL on both.
 */

/** Result rows of a query. */
export interface QueryResult<Row> {
  rows: Row[];
  /** Rows inserted/updated/deleted where the engine reports it. */
  affectedRows: number;
}

/** A connection able to run parameterised SQL. */
export interface Queryable {
  /** Runs one statement with `$1..$n` parameters. */
  query<Row = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<QueryResult<Row>>;
}

/** The connection inside `Database.transaction`: parameterised queries plus scripts (migrations). */
export interface Transaction extends Queryable {
  /** Runs a multi-statement script without parameters inside the transaction. */
  exec(sql: string): Promise<void>;
}

/** What the connected database can do. */
export interface DatabaseFeatures {
  /** The TimescaleDB extension is installed: hypertables, policies, continuous aggregates. */
  timescale: boolean;
  /** Engine label for logs and /health: `embedded-timescaledb`, `postgresql`, ... */
  engine: string;
  /** Server version string. */
  version: string;
}

/** The hub's database. */
export interface Database extends Queryable {
  readonly features: DatabaseFeatures;
  /** Runs a multi-statement script without parameters (migrations). */
  exec(sql: string): Promise<void>;
  /** Runs `fn` in one transaction; commits on resolve, rolls back on throw. */
  transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}
