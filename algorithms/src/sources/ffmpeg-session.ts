/** One ffmpeg process: spawn, parse its output into frames, queue them with a bound, kill it. */
import { type ChildProcessByStdio, spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { type CitysenseError, errorMessage, type Logger } from '@citysense/protocol';
import {
  type FfmpegFailureDetails,
  SOURCE_DECODE,
  SOURCE_FFMPEG_MISSING,
  SOURCE_UNREACHABLE,
  sourceError,
} from './errors.ts';
import { classifyFfmpegFailure, endedByInputError, FfmpegStderr, type FrameSize } from './ffmpeg-stderr.ts';
import { FrameAssembler } from './frame-assembler.ts';

/** What a consumer does not keep up with: drop the oldest queued frame, or pause ffmpeg's output. */
export type Backpressure = 'drop-oldest' | 'pause';

/** How one ffmpeg run is set up. */
export interface FfmpegSessionOptions {
  ffmpegPath: string;
  args: string[];
  /** Redacted input, for errors and logs. */
  input: string;
  backpressure: Backpressure;
  /** Most decoded frames held for a slow consumer. */
  maxQueuedFrames: number;
  /** Kill ffmpeg when it writes no frame data for this long (ms) while we are reading. */
  stallTimeoutMs: number;
  /** Wait this long after SIGTERM before SIGKILL (ms). */
  killGraceMs: number;
  stderrLines: number;
  logger: Logger;
}

/** A decoded frame as the session yields it. */
export interface RawFrame {
  rgb: Buffer;
  width: number;
  height: number;
  /** Position among the frames this session decoded, from 0. */
  seq: number;
  time: number;
}

/** Bytes ffmpeg may write before announcing the frame size; beyond this the output is not ours. */
const MAX_UNSIZED_BYTES = 64 * 1024 * 1024;

type Waiter = { resolve: (frame: RawFrame | undefined) => void; reject: (err: CitysenseError) => void };

/** Runs ffmpeg once and yields its raw RGB24 frames through `next()`; `close()` kills it. */
export class FfmpegSession {
  readonly #o: FfmpegSessionOptions;
  readonly #queue: RawFrame[] = [];
  readonly #unsized: Buffer[] = [];
  #unsizedBytes = 0;
  #child: ChildProcessByStdio<null, Readable, Readable> | undefined;
  #stderr: FfmpegStderr;
  #assembler: FrameAssembler | undefined;
  #size: FrameSize | undefined;
  #waiter: Waiter | undefined;
  #failure: CitysenseError | undefined;
  #ended = false;
  #closing: Promise<void> | undefined;
  #exited: Promise<void> = Promise.resolve();
  #stallTimer: NodeJS.Timeout | undefined;
  #paused = false;
  #decoded = 0;
  #dropped = 0;
  #peakQueued = 0;

  constructor(o: FfmpegSessionOptions) {
    this.#o = o;
    this.#stderr = new FfmpegStderr(o.stderrLines, (size) => this.#onSize(size));
  }

  /** Frames decoded so far, delivered or not. */
  get decoded(): number {
    return this.#decoded;
  }

  /** Frames discarded because the consumer was behind. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Most frames ever waiting in the queue at once. */
  get peakQueued(): number {
    return this.#peakQueued;
  }

  /** Frame buffers allocated (memory held is at most this many frames plus what consumers keep). */
  get buffersAllocated(): number {
    return this.#assembler?.allocated ?? 0;
  }

  /** Process id while ffmpeg runs; undefined before start and after it has exited. */
  get pid(): number | undefined {
    return this.#child && this.#child.exitCode === null && this.#child.signalCode === null
      ? this.#child.pid
      : undefined;
  }

  /** Output frame size, once ffmpeg has announced it. */
  get size(): FrameSize | undefined {
    return this.#size;
  }

  /** Spawns ffmpeg. */
  start(): void {
    if (this.#child || this.#closing) return;
    const { ffmpegPath, args, logger } = this.#o;
    logger.debug({ ffmpegPath, input: this.#o.input }, 'starting ffmpeg');
    const child = spawn(ffmpegPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#child = child;
    this.#exited = new Promise((resolve) => {
      // 'close' comes after 'exit' and after stdout has been read to its end, so every frame
      // ffmpeg wrote is queued before we decide how the run ended.
      child.once('close', (code, signal) => {
        this.#onClose(code, signal);
        resolve();
      });
      child.once('error', (err: NodeJS.ErrnoException) => {
        if (child.pid !== undefined) {
          logger.warn({ err: errorMessage(err) }, 'ffmpeg process error');
          return;
        }
        // Spawn failed: no 'close' follows reliably, so finish here.
        this.#fail(
          sourceError(
            SOURCE_FFMPEG_MISSING,
            `cannot run ffmpeg at '${ffmpegPath}' (${err.code ?? errorMessage(err)}); install ffmpeg or set CITYSENSE_FFMPEG`,
            { ffmpegPath },
          ),
        );
        resolve();
      });
    });
    child.stdout.on('data', (chunk: Buffer) => this.#onStdout(chunk));
    child.stdout.on('error', (err) => logger.warn({ err: errorMessage(err) }, 'ffmpeg stdout error'));
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (text: string) => this.#stderr.push(text));
    child.stderr.on('error', (err) => logger.warn({ err: errorMessage(err) }, 'ffmpeg stderr error'));
    this.#armStall();
  }

  /** The next frame; undefined once ffmpeg ended cleanly or the session was closed; rejects with a coded error. */
  next(): Promise<RawFrame | undefined> {
    const frame = this.#queue.shift();
    if (frame) {
      this.#resumeIfRoom();
      return Promise.resolve(frame);
    }
    if (this.#failure) return Promise.reject(this.#failure);
    if (this.#ended || this.#closing) return Promise.resolve(undefined);
    if (this.#waiter) return Promise.reject(new Error('FfmpegSession.next() called while a call is pending'));
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject };
    });
  }

  /** Stops ffmpeg (SIGTERM, then SIGKILL after the grace period) and waits until it has exited. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#clearStall();
    this.#wake(undefined);
    const child = this.#child;
    if (!child) return;
    // Drain stdout: an ffmpeg blocked writing to a paused pipe cannot act on SIGTERM, and
    // 'close' only comes once the pipe has been read to its end.
    child.stdout.resume();
    if (child.exitCode !== null || child.signalCode !== null) {
      await this.#exited;
      return;
    }
    child.kill('SIGTERM');
    const killer = setTimeout(() => {
      this.#o.logger.warn({ pid: child.pid }, 'ffmpeg ignored SIGTERM; sending SIGKILL');
      child.kill('SIGKILL');
    }, this.#o.killGraceMs);
    await this.#exited;
    clearTimeout(killer);
  }

  #onSize(size: FrameSize): void {
    if (this.#closing) return;
    this.#size = size;
    this.#o.logger.debug({ ...size }, 'ffmpeg output size');
    this.#assembler = new FrameAssembler(
      size.width * size.height * 3,
      (rgb) => this.#onFrame(rgb),
      this.#o.maxQueuedFrames + 1,
    );
    for (const chunk of this.#unsized.splice(0)) this.#assembler.push(chunk);
    this.#unsizedBytes = 0;
  }

  #onStdout(chunk: Buffer): void {
    if (this.#closing || this.#failure) return;
    this.#armStall();
    if (this.#assembler) {
      this.#assembler.push(chunk);
      return;
    }
    // stdout and stderr are separate pipes: frame bytes can arrive before the size line.
    this.#unsized.push(chunk);
    this.#unsizedBytes += chunk.length;
    if (this.#unsizedBytes > MAX_UNSIZED_BYTES) {
      this.#fail(
        sourceError(
          SOURCE_DECODE,
          `ffmpeg wrote video without announcing its frame size for ${this.#o.input}`,
          this.#details(),
        ),
      );
      void this.close();
    }
  }

  #onFrame(rgb: Buffer): void {
    const size = this.#size;
    if (!size || this.#closing) return;
    const frame: RawFrame = {
      rgb,
      width: size.width,
      height: size.height,
      seq: this.#decoded++,
      time: Date.now(),
    };
    if (this.#waiter) {
      this.#wake(frame);
      return;
    }
    const { backpressure, maxQueuedFrames } = this.#o;
    if (backpressure === 'drop-oldest' && this.#queue.length >= maxQueuedFrames) {
      const stale = this.#queue.shift();
      if (stale) {
        this.#dropped++;
        this.#assembler?.recycle(stale.rgb);
      }
    }
    this.#queue.push(frame);
    this.#peakQueued = Math.max(this.#peakQueued, this.#queue.length);
    if (backpressure === 'pause' && this.#queue.length >= maxQueuedFrames && !this.#paused) {
      // ffmpeg blocks on the full pipe: a file is decoded no faster than it is consumed.
      this.#paused = true;
      this.#child?.stdout.pause();
      this.#clearStall();
    }
  }

  #resumeIfRoom(): void {
    if (!this.#paused || this.#queue.length >= this.#o.maxQueuedFrames || this.#closing) return;
    this.#paused = false;
    this.#child?.stdout.resume();
    this.#armStall();
  }

  #onStall(): void {
    if (this.#closing || this.#paused) return;
    this.#fail(
      sourceError(
        SOURCE_UNREACHABLE,
        `no video from ${this.#o.input} for ${this.#o.stallTimeoutMs} ms; check that the stream is up`,
        this.#details(),
      ),
    );
    void this.close();
  }

  #onClose(code: number | null, signal: NodeJS.Signals | null): void {
    this.#clearStall();
    if (this.#closing || this.#failure) {
      this.#wake(undefined);
      return;
    }
    const details = this.#details(code, signal);
    if (code === 0 && endedByInputError(details.stderr)) {
      const last = details.stderr.findLast((line) => endedByInputError([line])) ?? '';
      this.#fail(
        sourceError(
          SOURCE_UNREACHABLE,
          `lost ${this.#o.input}: ${last}; check the stream and network`,
          details,
        ),
      );
      return;
    }
    if (code === 0) {
      if (this.#unsizedBytes > 0) {
        this.#fail(
          sourceError(SOURCE_DECODE, `ffmpeg never announced the frame size of ${this.#o.input}`, details),
        );
        return;
      }
      const partial = this.#assembler?.partialBytes ?? 0;
      if (partial > 0)
        this.#o.logger.warn({ partial }, 'ffmpeg output ended inside a frame; ignoring the partial frame');
      this.#ended = true;
      this.#wake(undefined);
      return;
    }
    const errorCode = classifyFfmpegFailure(details.stderr, this.#decoded > 0);
    const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
    const last = details.stderr.at(-1) ?? 'no output';
    const message =
      errorCode === SOURCE_UNREACHABLE
        ? `cannot read ${this.#o.input}: ffmpeg ${how} (${last}); check the address, credentials and network`
        : `cannot decode ${this.#o.input}: ffmpeg ${how} (${last}); check that it is a video ffmpeg can read`;
    this.#fail(sourceError(errorCode, message, details));
  }

  #fail(err: CitysenseError): void {
    if (this.#failure) return;
    this.#failure = err;
    this.#clearStall();
    this.#o.logger.debug({ code: err.code, err: err.message }, 'ffmpeg session failed');
    const waiter = this.#waiter;
    if (waiter && this.#queue.length === 0) {
      this.#waiter = undefined;
      waiter.reject(err);
    }
  }

  #wake(frame: RawFrame | undefined): void {
    const waiter = this.#waiter;
    if (!waiter) return;
    this.#waiter = undefined;
    waiter.resolve(frame);
  }

  #armStall(): void {
    // refresh() is cheap per chunk but cannot revive a cleared timer, so re-create after a pause.
    if (this.#stallTimer) this.#stallTimer.refresh();
    else this.#stallTimer = setTimeout(() => this.#onStall(), this.#o.stallTimeoutMs);
  }

  #clearStall(): void {
    if (this.#stallTimer) clearTimeout(this.#stallTimer);
    this.#stallTimer = undefined;
  }

  #details(code: number | null = null, signal: string | null = null): FfmpegFailureDetails {
    return { input: this.#o.input, exitCode: code, signal, stderr: this.#stderr.tail() };
  }
}
