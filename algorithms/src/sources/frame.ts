/**
 * The frame-source contract: every input (still image, image folder, camera stream)
 * yields the same `Frame`, so inference code never knows where pixels came from.
 */

import type { ImageSource } from '../inference/preprocess.ts';

/** Pixels of one frame: still encoded (JPEG/PNG bytes) or decoded to packed RGB24. */
export type FrameImage =
  | { kind: 'encoded'; data: Buffer }
  | { kind: 'raw'; rgb: Uint8Array; width: number; height: number };

/** One frame from a source. */
export interface Frame {
  /** Id of the source that produced it (`FrameSourceDescription.id`). */
  source: string;
  /** Position in the source's decoded sequence, from 0; a gap means frames were dropped. */
  index: number;
  /** Milliseconds since the epoch when the frame was read or decoded. */
  time: number;
  image: FrameImage;
  /** The file a still image came from (image and folder sources). */
  file?: string | undefined;
}

/** What a source reads, for logs and status pages; never carries credentials. */
export interface FrameSourceDescription {
  /** Stable id put on every frame; defaults to the redacted input. */
  id: string;
  kind: 'image-file' | 'image-folder' | 'ffmpeg';
  /** File, folder or URL, with any password replaced by `***`. */
  input: string;
  /** True when the input has no end of its own (camera stream): it may drop frames and reconnect. */
  live: boolean;
  /** Decode rate in frames per second, when the source resamples. */
  fps?: number | undefined;
  /** Frames wider than this are scaled down, keeping aspect. */
  maxWidth?: number | undefined;
  /** Whether a folder source starts over after its last image. */
  loop?: boolean | undefined;
}

/** Counters of a source, summed over every `frames()` iteration it has served. */
export interface FrameSourceStats {
  /** Frames handed to a consumer. */
  delivered: number;
  /** Frames decoded but discarded because the consumer was behind. */
  dropped: number;
  /** Times the input was re-opened after a failure or end of a live stream. */
  restarts: number;
}

/**
 * A source of frames. Each `frames()` call opens the input afresh; the consumer stops
 * early by leaving its `for await` loop or by aborting `signal` (which ends the
 * iteration without an error). Either way every resource (ffmpeg process, file) is released.
 */
export interface FrameSource {
  /** What this source reads. */
  describe(): FrameSourceDescription;
  /** Current counters. */
  stats(): FrameSourceStats;
  /** Frames in order until the input ends, the consumer stops, or a coded error is thrown. */
  frames(signal?: AbortSignal): AsyncIterable<Frame>;
}

/** A frame's pixels as the detector takes them. */
export function imageSourceOf(image: FrameImage): ImageSource {
  return image.kind === 'encoded' ? image.data : { rgb: image.rgb, width: image.width, height: image.height };
}
