/**
 * Publishes a live H.264/H.265 elementary stream that arrives as access units in memory (from a
 * GB/T 28181 PS/RTP receiver, an SDK callback…) to the media relay through an ffmpeg child:
 * Annex B on ffmpeg's stdin, `-c copy` out. H.264 goes to RTMP (FLV). H.265 goes to MPEG-TS
 * over HTTP, because the FLV muxer of the bundled ffmpeg 4.1 has no HEVC.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { FFMPEG_ENV, resolveFfmpegPath } from '@citysense/algorithms';
import { CitysenseError, componentLogger, errorMessage, type Logger } from '@citysense/protocol';
import type { VideoCodec } from '../gb28181/media/access-unit.ts';
import { nalInfo, splitNalUnits } from '../gb28181/media/annexb.ts';
import { RTMP_FFMPEG_MISSING, RTMP_OPTIONS, RTMP_PUBLISHER_NOT_STARTED, rtmpError } from './errors.ts';

/** Environment variable naming an ffmpeg binary (shared with the frame sources). */

/** Options of `ElementaryStreamPublisher`. */
export interface ElementaryStreamPublisherOptions {
  codec: VideoCodec;
  /**
   * Where to publish, with an IP literal host (the bundled ffmpeg crashes resolving names):
   * `rtmp://…` for H.264 (`MediaRelayServer.rtmpUrl(app, stream, { publish: true })`), or an
   * `http://…/app/stream.ts` MPEG-TS ingest (`tsUrl(app, stream, { publish: true })`), the
   * only choice for H.265.
   */
  url: string;
  /**
   * Nominal frame rate (default 25). Raw Annex B carries no timestamps: H.264 frames are stamped
   * at this rate, H.265 frames with their arrival time (see ffmpegPublishArgs).
   */
  frameRate?: number | undefined;
  /** ffmpeg binary; else `$CITYSENSE_FFMPEG`, else the bundled static ffmpeg, else `ffmpeg` on PATH. */
  ffmpegPath?: string | undefined;
  /** Bytes queued on ffmpeg's stdin before access units are dropped up to the next keyframe (default 2 MiB). */
  maxBufferedBytes?: number | undefined;
  /** First wait before restarting an ffmpeg that died, ms (default 250); doubles up to maxRestartDelayMs. */
  restartDelayMs?: number | undefined;
  /** Longest wait between restarts, ms (default 10 000). */
  maxRestartDelayMs?: number | undefined;
  /** Wait for ffmpeg to finish after end of input, and again after SIGTERM, ms (default 2000). */
  killGraceMs?: number | undefined;
  logger?: Logger | undefined;
}

/** How an ffmpeg run ended. */
export interface PublisherExit {
  pid: number | undefined;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** True when stop() ended it; false when it died on its own (a restart follows). */
  expected: boolean;
  /** Last lines of ffmpeg's stderr. */
  stderr: string[];
}

/** Typed events of `ElementaryStreamPublisher`. */
export interface ElementaryPublisherEvents {
  /** An ffmpeg process started (first start and every restart). */
  spawn: [pid: number];
  /** An ffmpeg process ended. */
  exit: [exit: PublisherExit];
}

/** Counters of a publisher. */
export interface ElementaryPublisherStats {
  /** Access units given to push(). */
  pushed: number;
  /** Access units written to ffmpeg. */
  written: number;
  /** Access units dropped: before a keyframe, while ffmpeg restarted or could not keep up. */
  dropped: number;
  /** ffmpeg restarts after a death. */
  restarts: number;
  /** Process id of the running ffmpeg. */
  pid: number | undefined;
  /** Dropping until the next keyframe. */
  waitingForKeyframe: boolean;
}

const STDERR_LINES = 20;
/** A run this long counts as healthy: the restart backoff starts over. */
const HEALTHY_RUN_MS = 5000;

interface Run {
  child: ChildProcess;
  startedAt: number;
  exited: Promise<void>;
  stderr: string[];
}

/** Feeds pushed Annex B access units through ffmpeg to an RTMP or MPEG-TS-over-HTTP relay. */
export class ElementaryStreamPublisher extends EventEmitter<ElementaryPublisherEvents> {
  readonly #o: ElementaryStreamPublisherOptions;
  readonly #log: Logger;
  #active = false;
  /** start() succeeded once: later pushes while stopped are in-flight data, not a usage error. */
  #started = false;
  #ffmpegPath: string | undefined;
  #run: Run | undefined;
  #restartTimer: NodeJS.Timeout | undefined;
  #restartDelay = 0;
  #waitingForKeyframe = true;
  /** Parameter sets seen last, Annex B, re-sent before a keyframe that lacks them (e.g. after a restart). */
  #parameterSets: Buffer | undefined;
  #pushed = 0;
  #written = 0;
  #dropped = 0;
  #restarts = 0;
  #transition: Promise<void> = Promise.resolve();

  constructor(options: ElementaryStreamPublisherOptions) {
    super();
    this.#o = options;
    this.#log = componentLogger('elementary-publisher', options.logger).child({
      target: options.url.replace(/([?&]token=)[^&]*/g, '$1***'),
    });
  }

  /** Counters since construction. */
  stats(): ElementaryPublisherStats {
    return {
      pushed: this.#pushed,
      written: this.#written,
      dropped: this.#dropped,
      restarts: this.#restarts,
      pid: this.#run?.child.pid,
      waitingForKeyframe: this.#waitingForKeyframe,
    };
  }

  /** Starts ffmpeg; resolves once it runs. Idempotent. */
  start(): Promise<void> {
    const next = this.#transition.then(() => this.#start());
    this.#transition = next.catch(() => undefined);
    return next;
  }

  /** Ends the input so ffmpeg closes the stream cleanly; SIGTERM, then SIGKILL if it lingers. Idempotent. */
  stop(): Promise<void> {
    const next = this.#transition.then(() => this.#stop());
    this.#transition = next.catch(() => undefined);
    return next;
  }

  /**
   * Queues one access unit (Annex B, all NAL units of one picture). Returns false when it was
   * dropped: before the first keyframe, while ffmpeg restarts, when ffmpeg falls more than
   * `maxBufferedBytes` behind (decoding resumes cleanly at the next keyframe), or after stop()
   * (a receiver may still deliver packets that were in flight). Throws before start().
   */
  push(accessUnit: Buffer): boolean {
    if (!this.#active) {
      if (!this.#started)
        throw rtmpError(RTMP_PUBLISHER_NOT_STARTED, 'push() before start(); start the publisher first');
      this.#dropped++;
      return false;
    }
    this.#pushed++;
    const codec = this.#o.codec;
    let keyframe = false;
    const sets: Buffer[] = [];
    for (const unit of splitNalUnits(accessUnit)) {
      const nal = nalInfo(codec, unit.readUInt8(0));
      if (nal.keyframe) keyframe = true;
      else if (nal.parameterSet) sets.push(unit);
    }
    if (sets.length > 0) this.#parameterSets = annexB(sets);
    const stdin = this.#run?.child.stdin;
    const backlog = stdin?.writableLength ?? 0;
    if (!stdin?.writable || backlog > (this.#o.maxBufferedBytes ?? 2 * 1024 * 1024)) {
      if (!this.#waitingForKeyframe && stdin?.writable)
        this.#log.warn({ backlog }, 'ffmpeg falls behind; dropping access units until the next keyframe');
      this.#waitingForKeyframe = true;
      this.#dropped++;
      return false;
    }
    if (this.#waitingForKeyframe) {
      if (!keyframe) {
        this.#dropped++;
        return false;
      }
      this.#waitingForKeyframe = false;
      // A camera may send its parameter sets once per session; a fresh ffmpeg needs them again.
      if (sets.length === 0 && this.#parameterSets) stdin.write(this.#parameterSets);
    }
    stdin.write(accessUnit);
    this.#written++;
    return true;
  }

  async #start(): Promise<void> {
    if (this.#active) return;
    validate(this.#o);
    this.#ffmpegPath = await resolveFfmpegPath(this.#o.ffmpegPath);
    this.#active = true;
    this.#restartDelay = 0;
    try {
      await this.#spawn();
      this.#started = true;
    } catch (err) {
      this.#active = false;
      throw err;
    }
  }

  async #stop(): Promise<void> {
    if (!this.#active) return;
    this.#active = false;
    clearTimeout(this.#restartTimer);
    this.#restartTimer = undefined;
    const run = this.#run;
    if (!run) return;
    const grace = this.#o.killGraceMs ?? 2000;
    // End of input: ffmpeg flushes, writes the trailer and closes the stream itself.
    run.child.stdin?.end();
    if (await settlesWithin(run.exited, grace)) return;
    this.#log.warn({ pid: run.child.pid }, 'ffmpeg did not finish after end of input; sending SIGTERM');
    run.child.kill('SIGTERM');
    if (await settlesWithin(run.exited, grace)) return;
    this.#log.warn({ pid: run.child.pid }, 'ffmpeg ignored SIGTERM; sending SIGKILL');
    run.child.kill('SIGKILL');
    await run.exited;
  }

  #spawn(): Promise<void> {
    const path = this.#ffmpegPath ?? 'ffmpeg';
    const child = spawn(path, ffmpegPublishArgs(this.#o), { stdio: ['pipe', 'ignore', 'pipe'] });
    const stderr: string[] = [];
    let partial = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (text: string) => {
      const lines = (partial + text).split(/\r?\n/);
      partial = lines.pop() ?? '';
      for (const line of lines) if (line.trim() !== '') stderr.push(line);
      if (stderr.length > STDERR_LINES) stderr.splice(0, stderr.length - STDERR_LINES);
    });
    // EPIPE when ffmpeg dies with data queued; the exit handler reports the death.
    child.stdin?.on('error', (err) => this.#log.debug({ err: errorMessage(err) }, 'ffmpeg stdin closed'));
    let exited!: () => void;
    const run: Run = {
      child,
      startedAt: Date.now(),
      stderr,
      exited: new Promise<void>((resolve) => {
        exited = resolve;
      }),
    };
    this.#run = run;
    this.#waitingForKeyframe = true;
    return new Promise<void>((resolve, reject) => {
      child.once('spawn', () => {
        this.#log.info({ pid: child.pid, codec: this.#o.codec }, 'ffmpeg publishing');
        if (child.pid !== undefined) this.#emitSafely('spawn', child.pid);
        resolve();
      });
      child.once('error', (err: NodeJS.ErrnoException) => {
        // A running child that fails to be signalled also lands here; its end comes through 'close'.
        if (child.pid !== undefined) {
          this.#log.warn({ err: err.message, pid: child.pid }, 'ffmpeg process error');
          return;
        }
        if (this.#run === run) this.#run = undefined;
        exited();
        reject(
          err.code === 'ENOENT'
            ? rtmpError(RTMP_FFMPEG_MISSING, `ffmpeg not found at "${path}"; set ffmpegPath or ${FFMPEG_ENV}`)
            : new CitysenseError(RTMP_FFMPEG_MISSING, `ffmpeg at "${path}" could not start: ${err.message}`),
        );
      });
      child.once('close', (exitCode, signal) => {
        if (partial.trim() !== '') stderr.push(partial);
        if (this.#run === run) this.#run = undefined;
        exited();
        // A child that never started was reported by 'error' above.
        if (child.pid !== undefined) this.#exited(run, exitCode, signal);
      });
    });
  }

  #exited(run: Run, exitCode: number | null, signal: NodeJS.Signals | null): void {
    const expected = !this.#active;
    const info: PublisherExit = { pid: run.child.pid, exitCode, signal, expected, stderr: [...run.stderr] };
    this.#emitSafely('exit', info);
    if (expected) {
      this.#log.info({ pid: info.pid, exitCode, signal }, 'ffmpeg finished');
      return;
    }
    if (Date.now() - run.startedAt >= HEALTHY_RUN_MS) this.#restartDelay = 0;
    const initial = this.#o.restartDelayMs ?? 250;
    this.#restartDelay =
      this.#restartDelay === 0
        ? initial
        : Math.min(this.#o.maxRestartDelayMs ?? 10_000, this.#restartDelay * 2);
    this.#log.warn(
      { pid: info.pid, exitCode, signal, stderr: info.stderr, delayMs: this.#restartDelay },
      'ffmpeg died while the stream is active; restarting',
    );
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined;
      if (!this.#active) return;
      this.#restarts++;
      this.#spawn().catch((err: unknown) => {
        this.#log.error(
          { err: errorMessage(err) },
          'ffmpeg restart failed; the publisher stays down until stop()/start()',
        );
      });
    }, this.#restartDelay);
  }

  #emitSafely<E extends keyof ElementaryPublisherEvents>(
    event: E,
    ...args: ElementaryPublisherEvents[E]
  ): void {
    try {
      (this.emit as (e: E, ...a: ElementaryPublisherEvents[E]) => boolean)(event, ...args);
    } catch (err) {
      this.#log.error({ err: errorMessage(err), event }, 'a publisher listener failed; publishing continues');
    }
  }
}

/** The ffmpeg command line: Annex B on stdin, copied into FLV over RTMP or MPEG-TS over HTTP POST. */
export function ffmpegPublishArgs(o: ElementaryStreamPublisherOptions): string[] {
  const args = ['-hide_banner', '-nostats', '-loglevel', 'warning'];
  // Minimal probe: the first keyframe carries the parameter sets, so ffmpeg starts on the first
  // access unit instead of buffering 5 s of a live camera (0 would mean "the default").
  args.push('-probesize', '32', '-analyzeduration', '1', '-fflags', '+genpts');
  // ffmpeg 4.1's raw HEVC demuxer leaves the first pts unset whatever the frame rate, and the
  // MPEG-TS muxer refuses that ("first pts value must be set"): H.265 is stamped on arrival.
  if (o.codec === 'h265') args.push('-use_wallclock_as_timestamps', '1');
  args.push(
    '-f',
    o.codec === 'h264' ? 'h264' : 'hevc',
    '-framerate',
    String(o.frameRate ?? 25),
    '-i',
    'pipe:0',
  );
  args.push('-map', '0:v:0', '-c', 'copy');
  if (schemeOf(o.url) === 'rtmp') args.push('-f', 'flv', o.url);
  // ffmpeg's HTTP output POSTs chunked; the relay fans the TS packets out to players.
  else args.push('-f', 'mpegts', '-method', 'POST', o.url);
  return args;
}

function annexB(units: Buffer[]): Buffer {
  const startCode = Buffer.from([0, 0, 0, 1]);
  return Buffer.concat(units.flatMap((u) => [startCode, u]));
}

function schemeOf(url: string): string | undefined {
  return /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1]?.toLowerCase();
}

function validate(o: ElementaryStreamPublisherOptions): void {
  const problems: string[] = [];
  if (o.codec !== 'h264' && o.codec !== 'h265')
    problems.push(`codec must be "h264" or "h265", got "${String(o.codec)}"`);
  const scheme = schemeOf(o.url ?? '');
  if (scheme !== 'rtmp' && scheme !== 'http')
    problems.push('url must be rtmp://… or an http://… MPEG-TS ingest');
  if (o.codec === 'h265' && scheme === 'rtmp')
    problems.push(
      'H.265 cannot go over RTMP: FLV in the bundled ffmpeg 4.1 has no HEVC; publish to tsUrl(app, stream, { publish: true })',
    );
  const check = (name: string, v: number | undefined, min: number, max: number): void => {
    if (v !== undefined && !(v >= min && v <= max))
      problems.push(`${name} must be in [${min}, ${max}], got ${v}`);
  };
  check('frameRate', o.frameRate, 0.1, 300);
  check('maxBufferedBytes', o.maxBufferedBytes, 1024, 1024 * 1024 * 1024);
  check('restartDelayMs', o.restartDelayMs, 0, 3_600_000);
  check('maxRestartDelayMs', o.maxRestartDelayMs, 0, 3_600_000);
  check('killGraceMs', o.killGraceMs, 0, 60_000);
  if (problems.length > 0)
    throw rtmpError(RTMP_OPTIONS, `invalid elementary stream publisher options: ${problems.join('; ')}`, {
      problems,
    });
}

function settlesWithin(p: Promise<void>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    void p.then(() => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}
