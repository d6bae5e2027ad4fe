/** Reads ffmpeg's stderr: the output frame size, and the last lines for error reports. */
import { SOURCE_DECODE, SOURCE_UNREACHABLE } from './errors.ts';
import { redactCredentials } from './spec.ts';

/** Width and height of the raw frames ffmpeg writes. */
export interface FrameSize {
  width: number;
  height: number;
}

// e.g. `    Stream #0:0: Video: rawvideo (RGB[24] / 0x18424752), rgb24, 640x480 [SAR 1:1 DAR 4:3], …`
const OUTPUT_STREAM = /Stream #\d+:\d+.*: Video: rawvideo\b.*?, rgb24(?:\([^)]*\))?, (\d+)x(\d+)/;

/** Splits stderr into lines, keeps the last few, and reports the `Output #0` video size once. */
export class FfmpegStderr {
  readonly #maxLines: number;
  readonly #onSize: (size: FrameSize) => void;
  readonly #lines: string[] = [];
  #partial = '';
  #inOutput = false;
  #size: FrameSize | undefined;

  constructor(maxLines: number, onSize: (size: FrameSize) => void) {
    this.#maxLines = maxLines;
    this.#onSize = onSize;
  }

  /** The output frame size, once ffmpeg has printed it. */
  get size(): FrameSize | undefined {
    return this.#size;
  }

  /** Feeds a chunk of stderr text. */
  push(chunk: string): void {
    const parts = (this.#partial + chunk).split(/\r\n|\r|\n/);
    this.#partial = parts.pop() ?? '';
    for (const line of parts) this.#line(line);
  }

  /** The last lines, credentials redacted, including an unterminated final line. */
  tail(): string[] {
    const lines = this.#partial.trim() ? [...this.#lines, this.#partial] : [...this.#lines];
    return lines.slice(-this.#maxLines).map(redactCredentials);
  }

  #line(line: string): void {
    if (line.trim() === '') return;
    this.#lines.push(line);
    if (this.#lines.length > this.#maxLines) this.#lines.shift();
    if (this.#size) return;
    // The input section may itself hold a rawvideo rgb24 stream; only Output #0 is ours.
    if (/^Output #0\b/.test(line)) this.#inOutput = true;
    if (!this.#inOutput) return;
    const m = OUTPUT_STREAM.exec(line);
    if (!m) return;
    const width = Number(m[1]);
    const height = Number(m[2]);
    if (width > 0 && height > 0) {
      this.#size = { width, height };
      this.#onSize(this.#size);
    }
  }
}

const UNREACHABLE_LINE =
  /Connection refused|Connection timed out|timed out|No route to host|Network is unreachable|Host is unreachable|Name or service not known|Temporary failure in name resolution|Failed to resolve|Server returned [45]\d\d|HTTP error [45]\d\d|method DESCRIBE failed|Unauthorized|No such file or directory|Permission denied|Connection reset|Broken pipe|Cannot open connection|End of file|Input\/output error/i;
const DECODE_LINE =
  /Invalid data found|could not find codec parameters|moov atom not found|does not contain any stream|matches no streams|Decoder .* not found|Unsupported codec|no frame!|Error while decoding/i;

/**
 * Whether a run that exited 0 was cut short: ffmpeg treats a read error after the start
 * (IO timeout, reset) as the end of input and still exits 0, printing `<url>: Connection timed out`.
 */
export function endedByInputError(stderrTail: readonly string[]): boolean {
  return stderrTail.some((line) => UNREACHABLE_LINE.test(line));
}

/** Which coded error an ffmpeg exit means, judged by its last stderr lines (newest first). */
export function classifyFfmpegFailure(
  stderrTail: readonly string[],
  hadFrames: boolean,
): typeof SOURCE_UNREACHABLE | typeof SOURCE_DECODE {
  for (let i = stderrTail.length - 1; i >= 0; i--) {
    const line = stderrTail[i] ?? '';
    if (UNREACHABLE_LINE.test(line)) return SOURCE_UNREACHABLE;
    if (DECODE_LINE.test(line)) return SOURCE_DECODE;
  }
  // Silence: a stream that delivered and then died was lost; one that never decoded was bad.
  return hadFrames ? SOURCE_UNREACHABLE : SOURCE_DECODE;
}
