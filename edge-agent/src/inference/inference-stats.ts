/** Per-assignment inference figures: totals since the model became active, rates over the report window. */
import type { InferenceStats } from '@citysense/protocol';

/** Most inference times kept per window; older ones give way (a window at 60 fps × 10 s holds 600). */
const MAX_SAMPLES = 4096;

/**
 * Counts frames, errors and dropped frames since `reset()` (the model became active),
 * and keeps the inference times of the current window for fps and percentiles.
 */
export class InferenceStatsWindow {
  #frames = 0;
  #errors = 0;
  #dropped = 0;
  #windowStart: number;
  #windowFrames = 0;
  #samples: number[] = [];

  constructor(now = Date.now()) {
    this.#windowStart = now;
  }

  /** Starts over: a new model is active. */
  reset(now = Date.now()): void {
    this.#frames = 0;
    this.#errors = 0;
    this.#dropped = 0;
    this.#startWindow(now);
  }

  /** One frame inferred in `inferMs`. */
  recordFrame(inferMs: number): void {
    this.#frames++;
    this.#windowFrames++;
    if (this.#samples.length >= MAX_SAMPLES) this.#samples.shift();
    this.#samples.push(inferMs);
  }

  /** A failed inference or a source failure. */
  recordError(): void {
    this.#errors++;
  }

  /** Frames a source decoded but nobody inferred (consumer behind). */
  recordDropped(count: number): void {
    if (count > 0) this.#dropped += count;
  }

  /** The figures so far; `endWindow` starts a new window for fps and percentiles (one per status report). */
  snapshot(now = Date.now(), endWindow = false): InferenceStats {
    const seconds = Math.max(0.001, (now - this.#windowStart) / 1000);
    const sorted = [...this.#samples].sort((a, b) => a - b);
    const stats: InferenceStats = {
      frames: this.#frames,
      fps: round2(this.#windowFrames / seconds),
      inferP50Ms: round2(percentile(sorted, 0.5)),
      inferP95Ms: round2(percentile(sorted, 0.95)),
      errors: this.#errors,
      droppedFrames: this.#dropped,
    };
    if (endWindow) this.#startWindow(now);
    return stats;
  }

  #startWindow(now: number): void {
    this.#windowStart = now;
    this.#windowFrames = 0;
    this.#samples = [];
  }
}

/** Nearest-rank percentile of ascending `sorted`; 0 when empty. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(p * sorted.length)));
  return sorted[rank - 1] ?? 0;
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}
