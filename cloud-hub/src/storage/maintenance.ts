/**
 * Runs TimescaleDB policy jobs (compression, retention, continuous aggregate
 * refresh) for the embedded engine, which has no background workers. On a
 * server the TimescaleDB scheduler runs them, so this component does nothing.
 */
import { componentLogger, errorMessage, type Logger } from '@citysense/protocol';
import type { Database } from './database.ts';
import { EMBEDDED_ENGINE } from './embedded.ts';

/** Options of `StorageMaintenance`. */
export interface StorageMaintenanceOptions {
  /** How often to look for due jobs; default 60 s. */
  intervalMs?: number;
  logger?: Logger;
  /** Called after every timed pass (metrics, tests). */
  onPass?: (report: MaintenanceReport) => void;
}

/** Outcome of one maintenance pass. */
export interface MaintenanceReport {
  /** Job ids that ran successfully. */
  ran: number[];
  /** Jobs that failed, with the database's message. */
  failed: Array<{ jobId: number; proc: string; error: string }>;
}

interface JobRow {
  job_id: number;
  proc_name: string;
  interval_s: number;
}

/** The TimescaleDB procedures that implement policies; other jobs (job-history cleanup, user actions) are left alone. */
const POLICY_PROCS = ['policy_compression', 'policy_retention', 'policy_refresh_continuous_aggregate'];

/** Periodically runs due TimescaleDB policy jobs on the embedded engine. */
export class StorageMaintenance {
  readonly #db: Database;
  readonly #intervalMs: number;
  readonly #logger: Logger;
  readonly #onPass: ((report: MaintenanceReport) => void) | undefined;
  readonly #lastRun = new Map<number, number>();
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<unknown> | undefined;
  #started = false;

  constructor(db: Database, options: StorageMaintenanceOptions = {}) {
    this.#db = db;
    this.#intervalMs = options.intervalMs ?? 60_000;
    this.#logger = options.logger ?? componentLogger('storage-maintenance');
    this.#onPass = options.onPass;
  }

  /** True when this engine needs the hub to run its jobs. */
  get active(): boolean {
    return this.#db.features.engine === EMBEDDED_ENGINE && this.#db.features.timescale;
  }

  /** Starts the timer; the first pass runs right away. Idempotent. */
  async start(signal?: AbortSignal): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    if (!this.active) {
      this.#logger.debug({ engine: this.#db.features.engine }, 'server runs its own jobs; maintenance idle');
      return;
    }
    signal?.addEventListener('abort', () => void this.stop(), { once: true });
    this.#schedule(0);
  }

  /** Stops the timer and waits for a pass in progress. Idempotent. */
  async stop(): Promise<void> {
    this.#started = false;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }

  /** Runs every policy job now, due or not (tests, `citysense db maintain`). */
  async runOnce(): Promise<MaintenanceReport> {
    return this.#pass(true);
  }

  #schedule(delayMs: number): void {
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      const pass = this.#pass(false);
      this.#running = pass;
      void pass.then((report) => {
        this.#running = undefined;
        try {
          this.#onPass?.(report);
        } catch (err) {
          this.#logger.error({ err: errorMessage(err) }, 'maintenance onPass listener failed');
        }
        if (this.#started) this.#schedule(this.#intervalMs);
      });
    }, delayMs);
    // The hub's other components keep the process alive; maintenance alone must not.
    this.#timer.unref();
  }

  /** Runs due jobs (all when `force`); never throws. */
  async #pass(force: boolean): Promise<MaintenanceReport> {
    const report: MaintenanceReport = { ran: [], failed: [] };
    if (!this.active) return report;
    let jobs: JobRow[];
    try {
      const res = await this.#db.query<JobRow>(
        `SELECT job_id, proc_name, extract(epoch FROM schedule_interval)::float8 AS interval_s
           FROM timescaledb_information.jobs
          WHERE scheduled AND proc_name = ANY($1::text[])
          ORDER BY job_id`,
        [POLICY_PROCS],
      );
      jobs = res.rows;
    } catch (err) {
      this.#logger.error({ err: errorMessage(err) }, 'could not list TimescaleDB jobs');
      report.failed.push({ jobId: -1, proc: 'list', error: errorMessage(err) });
      return report;
    }
    const now = Date.now();
    for (const job of jobs) {
      const last = this.#lastRun.get(job.job_id);
      if (!force && last !== undefined && now - last < job.interval_s * 1000) continue;
      this.#lastRun.set(job.job_id, now);
      const started = performance.now();
      try {
        // CALL run_job must not run inside a transaction block; db.query runs outside one.
        await this.#db.query('CALL run_job($1)', [job.job_id]);
        report.ran.push(job.job_id);
        this.#logger.debug(
          { jobId: job.job_id, proc: job.proc_name, ms: Math.round(performance.now() - started) },
          'TimescaleDB job ran',
        );
      } catch (err) {
        report.failed.push({ jobId: job.job_id, proc: job.proc_name, error: errorMessage(err) });
        this.#logger.error(
          { jobId: job.job_id, proc: job.proc_name, err: errorMessage(err) },
          'TimescaleDB job failed',
        );
      }
    }
    return report;
  }
}
