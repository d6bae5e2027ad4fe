/**
 * One video source of an assignment: opens it, paces it, infers each frame and hands the
 * result on. A source that fails (camera unreachable, folder missing) is logged with its
 * code, counted and retried with backoff; it never stops the agent or the other sources.
 */
import { type Frame, type FrameSource, openFrameSource } from '@citysense/algorithms';
import { CitysenseError, errorMessage, type Logger, type VideoSource } from '@citysense/protocol';
import { type BackoffOptions, backoffDelay, sleep } from '../backoff.ts';
import { FRAME_FAILED, SOURCE_FAILED } from './errors.ts';
import type { SlotDetection } from './model-slot.ts';

/** Where a source is. */
export type SourceRunState = 'starting' | 'running' | 'retrying' | 'stopped';

/** One source in the agent status. */
export interface SourceRunStatus {
  id: string;
  state: SourceRunState;
  frames: number;
  errors: number;
  /** Times the source was opened again after a failure or an end. */
  restarts: number;
  lastError: { code: string; message: string; at: number } | null;
}

/** What the runner needs from its assignment. */
export interface SourceRunnerOptions {
  source: VideoSource;
  /** Infers one frame on the assignment's shared detector. */
  detect: (image: Frame['image']) => Promise<SlotDetection>;
  onResult: (frame: Frame, result: SlotDetection) => void;
  /** A failed inference or source failure, for the assignment's error count. */
  onError: (err: unknown) => void;
  /** Frames the source decoded but skipped because inference was behind. */
  onDropped: (count: number) => void;
  backoff: BackoffOptions;
  logger: Logger;
}

/**
 * Runs one source until stopped. Each source has at most one frame in inference: the next
 * frame is only taken when the last one is done, so a slow detector makes live sources
 * drop frames (ffmpeg keeps the newest) instead of queueing them. Sources without a
 * clock of their own (folders, files) are paced to the assignment's fps; a file or folder
 * that ends starts over, like a camera that never stops.
 */
export class SourceRunner {
  readonly #o: SourceRunnerOptions;
  readonly #log: Logger;
  #controller: AbortController | null = null;
  #loop: Promise<void> | null = null;
  #status: SourceRunStatus;

  constructor(o: SourceRunnerOptions) {
    this.#o = o;
    this.#log = o.logger.child({ source: o.source.id });
    this.#status = { id: o.source.id, state: 'stopped', frames: 0, errors: 0, restarts: 0, lastError: null };
  }

  /** The source this runner reads. */
  get source(): VideoSource {
    return this.#o.source;
  }

  /** Starts reading in the background. Idempotent. */
  start(): void {
    if (this.#loop) return;
    const controller = new AbortController();
    this.#controller = controller;
    this.#status.state = 'starting';
    this.#loop = this.#run(controller.signal);
  }

  /** Stops reading and waits until the source is closed and its last frame inferred. Idempotent. */
  async stop(): Promise<void> {
    const loop = this.#loop;
    if (!loop) return;
    this.#controller?.abort();
    await loop;
    this.#loop = null;
    this.#controller = null;
    this.#status.state = 'stopped';
  }

  /** A copy of the runner's figures. */
  status(): SourceRunStatus {
    return { ...this.#status };
  }

  async #run(signal: AbortSignal): Promise<void> {
    const { id, url, fps } = this.#o.source;
    const pacer = new FramePacer(1000 / fps);
    let attempt = 0;
    while (!signal.aborted) {
      let delayMs = 0;
      try {
        const source = await openFrameSource(url, {
          id,
          fps,
          loop: true,
          // This runner retries with its own backoff, so that every failure is counted.
          reconnect: false,
          maxQueuedFrames: 1,
          logger: this.#log,
        });
        if (signal.aborted) break;
        const delivered = await this.#consume(source, pacer, signal);
        if (signal.aborted) break;
        if (delivered > 0) attempt = 0;
        // A file or folder that ended starts over at once (the pacer keeps the rate); a camera
        // stream that ended is a lost connection; an input without a single frame is trouble.
        if (delivered === 0) delayMs = backoffDelay(attempt++, this.#o.backoff) + this.#o.backoff.initialMs;
        else if (source.describe().live) {
          this.#status.state = 'retrying';
          this.#log.warn({ delivered }, 'video stream ended; reconnecting');
          delayMs = this.#o.backoff.initialMs;
        }
      } catch (err) {
        if (signal.aborted) break;
        this.#fail(err, SOURCE_FAILED, 'video source failed; retrying');
        this.#status.state = 'retrying';
        delayMs = backoffDelay(attempt++, this.#o.backoff) + this.#o.backoff.initialMs;
      }
      if (signal.aborted) break;
      this.#status.restarts++;
      if (delayMs > 0) await sleep(delayMs, signal).catch(() => undefined);
    }
  }

  /** Infers every frame of one opening of the source; returns how many it delivered. */
  async #consume(source: FrameSource, pacer: FramePacer, signal: AbortSignal): Promise<number> {
    const paced = !source.describe().live;
    let delivered = 0;
    let lastIndex = -1;
    for await (const frame of source.frames(signal)) {
      if (paced) await pacer.wait(signal);
      if (signal.aborted) break;
      if (lastIndex >= 0 && frame.index > lastIndex + 1) this.#o.onDropped(frame.index - lastIndex - 1);
      lastIndex = frame.index;
      this.#status.state = 'running';
      delivered++;
      let result: SlotDetection;
      try {
        result = await this.#o.detect(frame.image);
      } catch (err) {
        if (signal.aborted) break;
        this.#fail(err, FRAME_FAILED, 'inference failed on a frame');
        continue;
      }
      this.#status.frames++;
      this.#o.onResult(frame, result);
    }
    return delivered;
  }

  #fail(err: unknown, fallbackCode: string, what: string): void {
    const code = err instanceof CitysenseError ? err.code : fallbackCode;
    const previous = this.#status.lastError;
    this.#status.errors++;
    this.#status.lastError = { code, message: errorMessage(err), at: Date.now() };
    // A camera that stays down logs at warn when its failure changes, at debug while it repeats.
    const level = previous?.code === code ? 'debug' : 'warn';
    this.#log[level]({ code, err: errorMessage(err), errors: this.#status.errors }, what);
    this.#o.onError(err);
  }
}

/** Lets frames through at most every `periodMs`, without bursts to catch up after a slow frame. */
class FramePacer {
  #next = 0;

  constructor(readonly periodMs: number) {}

  async wait(signal: AbortSignal): Promise<void> {
    const now = Date.now();
    if (this.#next > now) await sleep(this.#next - now, signal).catch(() => undefined);
    this.#next = Math.max(this.#next, Date.now()) + this.periodMs;
  }
}
