/** Frames from anything ffmpeg reads (RTSP/RTMP/HTTP cameras, video files), decoded to RGB24. */
import { CitysenseError, componentLogger, type Logger } from '@citysense/protocol';
import { SOURCE_DECODE, SOURCE_OPTIONS, SOURCE_UNREACHABLE, sourceError } from './errors.ts';
import { ffmpegArgs } from './ffmpeg-args.ts';
import { resolveFfmpegPath } from './ffmpeg-path.ts';
import { type Backpressure, FfmpegSession, type RawFrame } from './ffmpeg-session.ts';
import type { Frame, FrameSource, FrameSourceDescription, FrameSourceStats } from './frame.ts';
import { resolveInputHost } from './resolve-host.ts';
import { isLiveByDefault, redactCredentials } from './spec.ts';

/** Backoff between reconnects of a live stream. */
export interface ReconnectOptions {
  /** First wait, ms (default 500); doubles after every run that produced no frame. */
  initialDelayMs?: number | undefined;
  /** Longest wait, ms (default 30 000). */
  maxDelayMs?: number | undefined;
  /** Consecutive runs without a frame before the last error is thrown (default: never give up). */
  maxAttempts?: number | undefined;
}

/** Options of `FfmpegStreamSource`. */
export interface FfmpegStreamOptions {
  /** URL (rtsp://, rtmp://, http(s)://, udp://…) or file path. */
  input: string;
  /** Id put on frames; defaults to the input with credentials redacted. */
  id?: string | undefined;
  /** Frames per second to decode; every frame of the input when absent. */
  fps?: number | undefined;
  /** Scale wider frames down to this width, keeping aspect. */
  maxWidth?: number | undefined;
  /** ffmpeg binary; else `$CITYSENSE_FFMPEG`, else the bundled static ffmpeg. */
  ffmpegPath?: string | undefined;
  /** Input has no end of its own; default: true for network URLs, false for files. */
  live?: boolean | undefined;
  /** Read at the native frame rate (`-re`), e.g. to replay a file as if it were a camera. */
  realtime?: boolean | undefined;
  /** Slow consumer policy; default 'drop-oldest' for live inputs, 'pause' for files. */
  backpressure?: Backpressure | undefined;
  /** Most decoded frames kept for a slow consumer (default 2). */
  maxQueuedFrames?: number | undefined;
  /** Re-open a live input after it fails or ends; ignored for non-live inputs. */
  reconnect?: boolean | ReconnectOptions | undefined;
  /** ffmpeg socket timeout, ms (default 10 000): `-stimeout` for RTSP, `-rw_timeout` otherwise. */
  ioTimeoutMs?: number | undefined;
  /** Kill ffmpeg when no frame data arrives this long, ms (default: ioTimeoutMs + 5 s, at least 3 frame periods). */
  stallTimeoutMs?: number | undefined;
  /** Wait after SIGTERM before SIGKILL, ms (default 2000). */
  killGraceMs?: number | undefined;
  /** Lines of ffmpeg's stderr attached to errors (default 20). */
  stderrLines?: number | undefined;
  /** Resolve the host name in Node and give ffmpeg the address (default true); see resolve-host.ts. */
  resolveHost?: boolean | undefined;
  logger?: Logger | undefined;
}

/** Counters of an ffmpeg source. */
export interface FfmpegStreamStats extends FrameSourceStats {
  /** Frames ffmpeg produced (delivered + dropped + still queued). */
  decoded: number;
  /** Most frames ever queued at once in one run: the memory bound in frames. */
  peakQueued: number;
  /** Frame buffers allocated over all runs. */
  buffersAllocated: number;
  /** Process ids of the ffmpeg processes running now. */
  ffmpegPids: number[];
  /** Size of the most recent frames. */
  width: number | undefined;
  height: number | undefined;
  /** The most recent failure, also when a reconnect followed it. */
  lastError: { code: string; message: string } | undefined;
}

const RETRYABLE: ReadonlySet<string> = new Set([SOURCE_UNREACHABLE, SOURCE_DECODE]);

/** Reads a stream or video file through an ffmpeg child process, one process per `frames()` call. */
export class FfmpegStreamSource implements FrameSource {
  readonly #o: FfmpegStreamOptions;
  readonly #id: string;
  readonly #input: string;
  readonly #live: boolean;
  readonly #reconnect: Required<ReconnectOptions> | undefined;
  readonly #log: Logger;
  readonly #running = new Set<FfmpegSession>();
  #delivered = 0;
  #dropped = 0;
  #decoded = 0;
  #restarts = 0;
  #peakQueued = 0;
  #buffersAllocated = 0;
  #width: number | undefined;
  #height: number | undefined;
  #lastError: CitysenseError | undefined;

  constructor(o: FfmpegStreamOptions) {
    validate(o);
    this.#o = o;
    this.#input = redactCredentials(o.input);
    this.#id = o.id ?? this.#input;
    this.#live = o.live ?? isLiveByDefault(o.input);
    const r = o.reconnect;
    this.#reconnect =
      r === undefined || r === false
        ? undefined
        : {
            initialDelayMs: (r === true ? undefined : r.initialDelayMs) ?? 500,
            maxDelayMs: (r === true ? undefined : r.maxDelayMs) ?? 30_000,
            maxAttempts: (r === true ? undefined : r.maxAttempts) ?? Number.POSITIVE_INFINITY,
          };
    this.#log = componentLogger('frame-source', o.logger).child({ source: this.#id });
  }

  /** What this source reads. */
  describe(): FrameSourceDescription {
    return {
      id: this.#id,
      kind: 'ffmpeg',
      input: this.#input,
      live: this.#live,
      fps: this.#o.fps,
      maxWidth: this.#o.maxWidth,
    };
  }

  /** Counters over all runs, including the ones in progress. */
  stats(): FfmpegStreamStats {
    let dropped = this.#dropped;
    let decoded = this.#decoded;
    let peakQueued = this.#peakQueued;
    let buffersAllocated = this.#buffersAllocated;
    const ffmpegPids: number[] = [];
    for (const s of this.#running) {
      dropped += s.dropped;
      decoded += s.decoded;
      peakQueued = Math.max(peakQueued, s.peakQueued);
      buffersAllocated += s.buffersAllocated;
      if (s.pid !== undefined) ffmpegPids.push(s.pid);
    }
    const e = this.#lastError;
    return {
      delivered: this.#delivered,
      dropped,
      restarts: this.#restarts,
      decoded,
      peakQueued,
      buffersAllocated,
      ffmpegPids,
      width: this.#width,
      height: this.#height,
      lastError: e && { code: e.code, message: e.message },
    };
  }

  /** Raw RGB24 frames until the input ends; reconnects live inputs when asked; aborting ends quietly. */
  async *frames(signal?: AbortSignal): AsyncGenerator<Frame, void, undefined> {
    const ffmpegPath = await resolveFfmpegPath(this.#o.ffmpegPath);
    let indexBase = 0;
    let idleRuns = 0; // consecutive runs that delivered no frame
    for (;;) {
      if (signal?.aborted) return;
      let failure: CitysenseError | undefined;
      let session: FfmpegSession | undefined;
      const onAbort = (): void => void session?.close();
      signal?.addEventListener('abort', onAbort, { once: true });
      try {
        session = await this.#open(ffmpegPath);
        if (signal?.aborted) return;
        for (let raw = await session.next(); raw; raw = await session.next()) {
          idleRuns = 0;
          this.#delivered++;
          yield this.#frame(raw, indexBase);
        }
      } catch (err) {
        if (err instanceof CitysenseError) this.#lastError = err;
        if (!(err instanceof CitysenseError) || !RETRYABLE.has(err.code)) throw err;
        failure = err;
      } finally {
        signal?.removeEventListener('abort', onAbort);
        if (session) {
          await session.close();
          indexBase += session.decoded;
          this.#retire(session);
        }
      }
      if (signal?.aborted) return;
      // A file that ends is done; only live inputs come back.
      if (!this.#reconnect || !this.#live) {
        if (failure) throw failure;
        return;
      }
      idleRuns++;
      if (idleRuns > this.#reconnect.maxAttempts) {
        throw (
          failure ??
          sourceError(SOURCE_UNREACHABLE, `${this.#input} keeps ending without a frame; check the stream`)
        );
      }
      const delay = this.#backoff(idleRuns);
      this.#log.warn(
        { code: failure?.code, err: failure?.message, delayMs: delay },
        'stream ended; reconnecting',
      );
      this.#restarts++;
      await sleep(delay, signal);
    }
  }

  async #open(ffmpegPath: string): Promise<FfmpegSession> {
    const o = this.#o;
    const target = o.resolveHost === false ? { input: o.input } : await resolveInputHost(o.input);
    const ioTimeoutMs = o.ioTimeoutMs ?? 10_000;
    const framePeriods = o.fps === undefined ? 0 : 3000 / o.fps;
    const session = new FfmpegSession({
      ffmpegPath,
      args: ffmpegArgs({
        input: target.input,
        fps: o.fps,
        maxWidth: o.maxWidth,
        ioTimeoutMs,
        realtime: o.realtime ?? false,
        httpHeaders: target.httpHeaders,
        live: this.#live,
      }),
      input: this.#input,
      backpressure: o.backpressure ?? (this.#live ? 'drop-oldest' : 'pause'),
      maxQueuedFrames: o.maxQueuedFrames ?? 2,
      stallTimeoutMs: o.stallTimeoutMs ?? Math.max(ioTimeoutMs + 5000, framePeriods),
      killGraceMs: o.killGraceMs ?? 2000,
      stderrLines: o.stderrLines ?? 20,
      logger: this.#log,
    });
    this.#running.add(session);
    session.start();
    return session;
  }

  #frame(raw: RawFrame, indexBase: number): Frame {
    this.#width = raw.width;
    this.#height = raw.height;
    return {
      source: this.#id,
      index: indexBase + raw.seq,
      time: raw.time,
      image: { kind: 'raw', rgb: raw.rgb, width: raw.width, height: raw.height },
    };
  }

  #retire(session: FfmpegSession): void {
    if (!this.#running.delete(session)) return;
    this.#dropped += session.dropped;
    this.#decoded += session.decoded;
    this.#peakQueued = Math.max(this.#peakQueued, session.peakQueued);
    this.#buffersAllocated += session.buffersAllocated;
  }

  #backoff(attempt: number): number {
    const r = this.#reconnect;
    if (!r) return 0;
    const base = Math.min(r.maxDelayMs, r.initialDelayMs * 2 ** Math.min(attempt - 1, 30));
    // ±20 % jitter so that cameras behind one failed switch do not all come back in step.
    return Math.round(base * (0.8 + Math.random() * 0.4));
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

function validate(o: FfmpegStreamOptions): void {
  const problems: string[] = [];
  const check = (
    name: string,
    value: number | undefined,
    min: number,
    max: number,
    integer: boolean,
  ): void => {
    if (value === undefined) return;
    if (Number.isNaN(value) || value < min || value > max || (integer && !Number.isInteger(value))) {
      problems.push(
        `${name} must be ${integer ? 'an integer' : 'a number'} in [${min}, ${max}], got ${value}`,
      );
    }
  };
  if (typeof o.input !== 'string' || o.input.trim() === '')
    problems.push('input must be a non-empty URL or path');
  check('fps', o.fps, 0.001, 1000, false);
  check('maxWidth', o.maxWidth, 2, 16384, true);
  check('maxQueuedFrames', o.maxQueuedFrames, 1, 1000, true);
  check('ioTimeoutMs', o.ioTimeoutMs, 100, 3_600_000, false);
  check('stallTimeoutMs', o.stallTimeoutMs, 100, 3_600_000, false);
  check('killGraceMs', o.killGraceMs, 0, 60_000, false);
  check('stderrLines', o.stderrLines, 1, 1000, true);
  if (typeof o.reconnect === 'object') {
    check('reconnect.initialDelayMs', o.reconnect.initialDelayMs, 0, 3_600_000, false);
    check('reconnect.maxDelayMs', o.reconnect.maxDelayMs, 0, 3_600_000, false);
    check('reconnect.maxAttempts', o.reconnect.maxAttempts, 0, Number.POSITIVE_INFINITY, false);
  }
  if (problems.length > 0) {
    throw sourceError(SOURCE_OPTIONS, `invalid ffmpeg source options: ${problems.join('; ')}`, { problems });
  }
}
