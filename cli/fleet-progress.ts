/**
 * Fleet progress for rollouts the CLI watches (algorithm deployments, OTA campaigns):
 * a redrawn block with a bar per node state on a TTY, one line per change otherwise,
 * and the poll loop that stops when the rollout settles or the user presses Ctrl-C.
 */
import { CitysenseError } from '@citysense/protocol';

/** Where progress goes. */
export type ProgressOut = NodeJS.WritableStream & { isTTY?: boolean; columns?: number };

/** One rollout as the display shows it. */
export interface FleetSnapshot {
  id: string;
  /** What rolls out, e.g. `yolox-nano 1.0.0`. */
  title: string;
  state: string;
  reason: string | null;
  total: number;
  /** Target nodes per state. */
  counts: Record<string, number>;
  /** Mean progress (0..1) of the nodes downloading, shown next to `downloading`. */
  downloadProgress: number | null;
  /** More lines under the bars (e.g. inference figures). */
  footer?: string[];
}

const BAR_WIDTH = 24;

/** The progress block: a header, then a bar per node state (in `order`) that has nodes. */
export function fleetProgressLines(s: FleetSnapshot, order: readonly string[]): string[] {
  const total = Math.max(1, s.total);
  const lines = [`${s.title}  ${s.id}  ${s.state}${s.reason ? ` — ${s.reason}` : ''}`];
  for (const state of order) {
    const n = s.counts[state] ?? 0;
    if (n === 0) continue;
    const filled = Math.round((n / total) * BAR_WIDTH);
    const bar = `${'█'.repeat(filled)}${'░'.repeat(BAR_WIDTH - filled)}`;
    lines.push(`  ${state.padEnd(12)} ${bar} ${String(n).padStart(5)}/${s.total}${extraOf(s, state)}`);
  }
  return [...lines, ...(s.footer ?? [])];
}

/** One line: the state and the count per node state. */
export function fleetSummaryLine(s: FleetSnapshot, order: readonly string[]): string {
  const parts = order.flatMap((state) => {
    const n = s.counts[state] ?? 0;
    return n === 0 ? [] : [`${state} ${n}${extraOf(s, state)}`];
  });
  return `${s.id} ${s.state}: ${parts.join(', ')} of ${s.total}`;
}

function extraOf(s: FleetSnapshot, state: string): string {
  if (state !== 'downloading' || s.downloadProgress === null) return '';
  return ` (${Math.round(s.downloadProgress * 100)} %)`;
}

/** Mean of the progress values, or null when there is none. */
export function meanProgress(values: readonly number[]): number | null {
  return values.length === 0 ? null : values.reduce((a, b) => a + b, 0) / values.length;
}

/** Renders progress: a redrawn block on a TTY, a line per change (or every 10 s) otherwise. */
export class FleetProgressDisplay {
  readonly #out: ProgressOut;
  readonly #quiet: boolean;
  readonly #order: readonly string[];
  #drawn = 0;
  #lastLine = '';
  #lastAt = 0;

  constructor(out: ProgressOut, quiet: boolean, order: readonly string[]) {
    this.#out = out;
    this.#quiet = quiet;
    this.#order = order;
  }

  /** Shows the rollout's current state. */
  show(s: FleetSnapshot): void {
    if (this.#quiet) return;
    if (this.#out.isTTY) {
      const width = Math.max(40, (this.#out.columns ?? 100) - 1);
      const lines = fleetProgressLines(s, this.#order).map((l) =>
        l.length > width ? `${l.slice(0, width - 1)}…` : l,
      );
      // Blank lines clear what a longer earlier drawing left below.
      while (lines.length < this.#drawn) lines.push('');
      const up = this.#drawn > 0 ? `\x1b[${this.#drawn}A` : '';
      this.#out.write(`${up}${lines.map((l) => `\x1b[2K${l}\n`).join('')}`);
      this.#drawn = lines.length;
      return;
    }
    // Not a terminal (CI, a log file): one line when something changed, else one every 10 s.
    const line = fleetSummaryLine(s, this.#order);
    const now = Date.now();
    if (line === this.#lastLine && now - this.#lastAt < 10_000) return;
    this.#out.write(`${new Date(now).toISOString()} ${line}\n`);
    this.#lastLine = line;
    this.#lastAt = now;
  }

  /** Leaves the last drawing in place. */
  end(): void {
    this.#drawn = 0;
  }
}

/** How long the hub may be unreachable while watching before the command gives up. */
const UNREACHABLE_GIVE_UP_MS = 60_000;

/** What `watchFleet` needs. */
export interface WatchOptions<T> {
  initial: T;
  fetch: () => Promise<T>;
  settled: (value: T) => boolean;
  snapshot: (value: T) => FleetSnapshot;
  order: readonly string[];
  intervalMs: number;
  out: ProgressOut;
  quiet: boolean;
  /** Stops watching; default: the first SIGINT/SIGTERM. */
  signal?: AbortSignal | undefined;
}

/** Polls a rollout until it settles, showing progress; undefined when interrupted. */
export async function watchFleet<T>(o: WatchOptions<T>): Promise<T | undefined> {
  const { signal, release } = stopSignal(o.signal);
  const display = new FleetProgressDisplay(o.out, o.quiet, o.order);
  let value = o.initial;
  let unreachableSince: number | undefined;
  try {
    for (;;) {
      display.show(o.snapshot(value));
      if (o.settled(value)) return value;
      if (!(await sleep(o.intervalMs, signal))) return undefined;
      try {
        value = await o.fetch();
        unreachableSince = undefined;
      } catch (err) {
        if (!(err instanceof CitysenseError) || err.code !== 'CS_ERR_HUB_UNREACHABLE') throw err;
        unreachableSince ??= Date.now();
        if (Date.now() - unreachableSince > UNREACHABLE_GIVE_UP_MS) throw err;
      }
    }
  } finally {
    display.end();
    release();
  }
}

/** Aborts on `external`, or on the first SIGINT/SIGTERM when none is given. */
function stopSignal(external: AbortSignal | undefined): { signal: AbortSignal; release: () => void } {
  if (external) return { signal: external, release: () => undefined };
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return {
    signal: controller.signal,
    release: () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    },
  };
}

/** Waits `ms`; false when aborted first. */
function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      resolve(ok);
    };
    const onAbort = () => done(false);
    const timer = setTimeout(() => done(true), ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
