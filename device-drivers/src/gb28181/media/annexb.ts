/**
 * Annex B byte streams (ITU-T H.264 Annex B / H.265 Annex B): find NAL units, split them into
 * access units and tell keyframes apart.
 */
import type { VideoCodec } from './access-unit.ts';
import { ByteQueue } from './byte-queue.ts';

/** An access unit cut from an Annex B stream; `startOffset` is its first byte's position in the stream. */
export interface AnnexBAccessUnit {
  data: Buffer;
  keyframe: boolean;
  startOffset: number;
}

/** What a NAL unit's header says, as far as access unit splitting cares. */
export interface NalInfo {
  type: number;
  /** A slice (VCL NAL unit). */
  vcl: boolean;
  /** An IDR (H.264 type 5) or IRAP (H.265 types 16-21) slice. */
  keyframe: boolean;
  /** A NAL unit that can only open an access unit: AUD, parameter sets, prefix SEI. */
  opensAccessUnit: boolean;
  /** SPS/PPS (H.264 7, 8) or VPS/SPS/PPS (H.265 32-34): what a decoder needs before a keyframe. */
  parameterSet: boolean;
}

/** Classifies the NAL unit whose header starts at `header[0]` (H.265 needs two header bytes). */
export function nalInfo(codec: VideoCodec, header: number): NalInfo {
  if (codec === 'h264') {
    const type = header & 0x1f;
    const vcl = type >= 1 && type <= 5;
    // H.264 §7.4.1.2.3: AUD, SPS, PPS, SEI and types 14-18 come before the first slice of a picture.
    const opensAccessUnit =
      type === 6 || type === 7 || type === 8 || type === 9 || (type >= 14 && type <= 18);
    return { type, vcl, keyframe: type === 5, opensAccessUnit, parameterSet: type === 7 || type === 8 };
  }
  const type = (header >> 1) & 0x3f;
  // H.265 §7.4.2.4.4: VPS, SPS, PPS, AUD, prefix SEI and types 41-44, 48-55 precede the first slice.
  const opensAccessUnit =
    (type >= 32 && type <= 35) || type === 39 || (type >= 41 && type <= 44) || type >= 48;
  return {
    type,
    vcl: type < 32,
    keyframe: type >= 16 && type <= 21,
    opensAccessUnit,
    parameterSet: type >= 32 && type <= 34,
  };
}

/** Index of the next `00 00 01` at or after `from`, or -1. */
export function findStartCode(data: Uint8Array, from: number): number {
  for (let i = Math.max(from, 0); i + 2 < data.length; i++) {
    if ((data[i + 2] ?? 0) > 1) {
      i += 2; // none of the three bytes from here can start a code ending past i+2
      continue;
    }
    if (data[i] === 0 && data[i + 1] === 0 && data[i + 2] === 1) return i;
  }
  return -1;
}

/** The NAL units of a whole Annex B buffer, start codes removed. */
export function splitNalUnits(data: Buffer): Buffer[] {
  const nals: Buffer[] = [];
  let start = findStartCode(data, 0);
  while (start >= 0) {
    const next = findStartCode(data, start + 3);
    let end = next < 0 ? data.length : next;
    while (next >= 0 && end > start + 3 && data[end - 1] === 0) end--; // zero_byte of a 4-byte start code
    if (end > start + 3) nals.push(data.subarray(start + 3, end));
    start = next;
  }
  return nals;
}

/** True when the Annex B access unit holds an IDR (H.264) or IRAP (H.265) slice. */
export function isKeyframe(codec: VideoCodec, accessUnit: Buffer): boolean {
  return splitNalUnits(accessUnit).some((nal) => nal.length > 0 && nalInfo(codec, nal.readUInt8(0)).keyframe);
}

/** Default cap on one access unit: beyond it the input is not video we can use. */
export const MAX_ACCESS_UNIT_BYTES = 16 * 1024 * 1024;

/**
 * Incremental Annex B access unit splitter. An access unit ends where the next one begins:
 * at an AUD, parameter set or SEI, or at a slice that is the first of its picture
 * (first_mb_in_slice = 0 / first_slice_segment_in_pic_flag = 1), once a slice has been seen.
 * Bytes before the first such point (a stream joined mid-picture) are discarded and counted.
 */
export class AccessUnitSplitter {
  /** Codec whose NAL headers this splitter reads. */
  readonly codec: VideoCodec;
  readonly #queue = new ByteQueue(64 * 1024);
  readonly #maxBytes: number;
  /** Stream offset of the queue's first byte. */
  #base = 0;
  #scanFrom = 0;
  #synced = false;
  #hasVcl = false;
  #keyframe = false;
  #discardedBytes = 0;

  constructor(codec: VideoCodec, maxAccessUnitBytes = MAX_ACCESS_UNIT_BYTES) {
    this.codec = codec;
    this.#maxBytes = maxAccessUnitBytes;
  }

  /** Stream offset just past the last byte pushed. */
  get bytesIn(): number {
    return this.#base + this.#queue.length;
  }

  /** Bytes dropped: before the first access unit, by `discard()`, or over the size cap. */
  get discardedBytes(): number {
    return this.#discardedBytes;
  }

  /** Feeds Annex B bytes; returns the access units they completed. */
  push(chunk: Uint8Array): AnnexBAccessUnit[] {
    const out: AnnexBAccessUnit[] = [];
    this.#queue.append(chunk);
    const headerBytes = this.codec === 'h264' ? 1 : 2;
    for (;;) {
      const view = this.#queue.view();
      const sc = findStartCode(view, this.#scanFrom);
      if (sc < 0) {
        this.#scanFrom = Math.max(0, view.length - 2);
        if (!this.#synced && view.length > 3) this.#drop(view.length - 3);
        break;
      }
      // Header plus one slice-header byte, whose top bit is first_mb_in_slice == 0 / first_slice_segment_in_pic_flag.
      if (view.length < sc + 3 + headerBytes + 1) {
        this.#scanFrom = sc;
        break;
      }
      const begin = sc > 0 && view[sc - 1] === 0 ? sc - 1 : sc;
      const info = nalInfo(this.codec, view.readUInt8(sc + 3));
      const firstSlice = info.vcl && (view.readUInt8(sc + 3 + headerBytes) & 0x80) !== 0;
      const opens = info.opensAccessUnit || firstSlice;
      let next = sc + 3;
      if (!this.#synced) {
        this.#drop(begin);
        next -= begin;
        if (opens) this.#synced = true;
      } else if (this.#hasVcl && opens) {
        out.push(this.#emit(begin));
        next -= begin;
      }
      if (this.#synced) {
        this.#hasVcl ||= info.vcl;
        this.#keyframe ||= info.keyframe;
      }
      this.#scanFrom = next;
    }
    if (this.#queue.length > this.#maxBytes) this.discard();
    return out;
  }

  /** Ends the current access unit now (end of stream, or the sender marked the picture complete). */
  endAccessUnit(): AnnexBAccessUnit[] {
    if (!this.#synced || !this.#hasVcl) return [];
    return [this.#emit(this.#queue.length)];
  }

  /** Drops the access unit being collected (data was lost); returns the bytes dropped. */
  discard(): number {
    const n = this.#queue.length;
    this.#drop(n);
    this.#synced = false;
    return n;
  }

  #emit(length: number): AnnexBAccessUnit {
    const au = { data: this.#queue.take(length), keyframe: this.#keyframe, startOffset: this.#base };
    this.#base += length;
    this.#scanFrom = 0;
    this.#hasVcl = false;
    this.#keyframe = false;
    return au;
  }

  #drop(length: number): void {
    this.#queue.consume(length);
    this.#base += length;
    this.#discardedBytes += length;
    this.#scanFrom = 0;
    this.#hasVcl = false;
    this.#keyframe = false;
  }
}
