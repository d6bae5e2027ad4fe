/**
 * Incremental MPEG-2 Program Stream demuxer for GB/T 28181 live video (ISO/IEC 13818-1 §2.5):
 * bytes in (RTP payloads or any chunks), video access units out. Garbage is skipped by scanning
 * for the next system start code and counted, never thrown.
 */
import type { VideoAccessUnit, VideoCodec } from './access-unit.ts';
import { AccessUnitSplitter, type AnnexBAccessUnit, MAX_ACCESS_UNIT_BYTES } from './annexb.ts';
import { ByteQueue } from './byte-queue.ts';
import { readTimestamp } from './ps-mux.ts';

/** Settings of a PS demuxer. */
export interface PsDemuxerOptions {
  /** Codec assumed until a PSM names one (devices often send the PSM only with keyframes). Default h264. */
  codec?: VideoCodec;
  /** Hold back pictures until the first keyframe, and again after lost data. Default true. */
  waitForKeyframe?: boolean;
  /** Largest access unit kept; beyond it the data is dropped as garbage. */
  maxAccessUnitBytes?: number;
}

/** Counters of a PS demuxer. */
export interface PsDemuxerStats {
  bytesIn: number;
  /** Bytes skipped: garbage between packets, broken headers, partial pictures after loss. */
  discardedBytes: number;
  packHeaders: number;
  systemHeaders: number;
  programStreamMaps: number;
  videoPes: number;
  /** Audio, private, padding and other non-video PES packets passed over. */
  skippedPes: number;
  accessUnits: number;
  /** Pictures dropped while waiting for a keyframe. */
  droppedAccessUnits: number;
}

/** The default frame step (25 fps) for pictures whose PES carried no PTS, before one is learnt. */
const DEFAULT_PTS_STEP = 3600;
const PTS_MODULO = 2 ** 33;
const MAX_PENDING_PTS = 64;

/** Incremental MPEG-PS demuxer yielding video access units. */
export class PsDemuxer {
  readonly #queue = new ByteQueue(128 * 1024);
  readonly #waitForKeyframe: boolean;
  readonly #maxAuBytes: number;
  #codec: VideoCodec;
  #splitter: AccessUnitSplitter;
  #videoStreamId: number | undefined;
  #inUnboundedPes = false;
  #needKeyframe: boolean;
  /** PTS of video PES packets, keyed by the elementary stream offset where each PES payload began. */
  #pendingPts: { offset: number; pts: number }[] = [];
  #lastPts: number | undefined;
  #ptsStep = DEFAULT_PTS_STEP;
  readonly #stats: PsDemuxerStats = {
    bytesIn: 0,
    discardedBytes: 0,
    packHeaders: 0,
    systemHeaders: 0,
    programStreamMaps: 0,
    videoPes: 0,
    skippedPes: 0,
    accessUnits: 0,
    droppedAccessUnits: 0,
  };

  constructor(options: PsDemuxerOptions = {}) {
    this.#codec = options.codec ?? 'h264';
    this.#waitForKeyframe = options.waitForKeyframe ?? true;
    this.#needKeyframe = this.#waitForKeyframe;
    this.#maxAuBytes = options.maxAccessUnitBytes ?? MAX_ACCESS_UNIT_BYTES;
    this.#splitter = new AccessUnitSplitter(this.#codec, this.#maxAuBytes);
  }

  /** Codec of the video stream (from the PSM, else the configured default). */
  get codec(): VideoCodec {
    return this.#codec;
  }

  /** A snapshot of the counters. */
  get stats(): PsDemuxerStats {
    return { ...this.#stats, discardedBytes: this.#stats.discardedBytes + this.#splitter.discardedBytes };
  }

  /** Feeds PS bytes; returns the access units they completed. Never throws on bad input. */
  push(chunk: Uint8Array): VideoAccessUnit[] {
    const out: VideoAccessUnit[] = [];
    this.#stats.bytesIn += chunk.length;
    this.#queue.append(chunk);
    this.#parse(out);
    return out;
  }

  /**
   * The sender says a picture is complete (RTP marker bit, GB/T 28181-2016 Annex C): emit it now
   * instead of when the next picture starts. Ignored while a PS packet is still incomplete.
   */
  endOfFrame(): VideoAccessUnit[] {
    const out: VideoAccessUnit[] = [];
    if (this.#inUnboundedPes) {
      this.#feedVideo(this.#queue.take(this.#queue.length), out);
      this.#inUnboundedPes = false;
    }
    if (this.#queue.length === 0) this.#deliver(this.#splitter.endAccessUnit(), out);
    return out;
  }

  /** End of stream: emit the last picture and drop any incomplete packet. */
  flush(): VideoAccessUnit[] {
    const out = this.endOfFrame();
    this.#discard(this.#queue.length);
    this.#deliver(this.#splitter.endAccessUnit(), out);
    return out;
  }

  /** Data was lost (RTP sequence gap): drop the partial packet and picture, resync on the next start code. */
  discontinuity(): void {
    this.#discard(this.#queue.length);
    this.#inUnboundedPes = false;
    this.#splitter.discard();
    this.#pendingPts = [];
    this.#needKeyframe = this.#waitForKeyframe;
  }

  #parse(out: VideoAccessUnit[]): void {
    for (;;) {
      const view = this.#queue.view();
      if (this.#inUnboundedPes) {
        // A video PES with PES_packet_length 0 runs to the next system start code; Annex B NAL
        // headers are below 0x80, so 00 00 01 followed by 0xB9 or more cannot occur inside it.
        const end = findSystemStartCode(view, 0);
        if (end < 0) {
          const n = Math.max(0, view.length - 3);
          if (n > 0) this.#feedVideo(this.#queue.take(n), out);
          return;
        }
        this.#feedVideo(this.#queue.take(end), out);
        this.#inUnboundedPes = false;
        continue;
      }
      if (view.length < 4) return;
      if (!(view[0] === 0 && view[1] === 0 && view[2] === 1 && view.readUInt8(3) >= 0xb9)) {
        const next = findSystemStartCode(view, 1);
        this.#discard(next < 0 ? view.length - 3 : next);
        if (next < 0) return;
        continue;
      }
      const id = view.readUInt8(3);
      if (id === 0xb9) {
        this.#queue.consume(4); // MPEG_program_end_code
        continue;
      }
      if (id === 0xba) {
        const length = packHeaderLength(view);
        if (length === undefined) return; // need more bytes
        if (length < 0) {
          this.#discard(4);
          continue;
        }
        this.#stats.packHeaders++;
        this.#queue.consume(length);
        continue;
      }
      if (view.length < 6) return;
      const length = view.readUInt16BE(4);
      if (length === 0 && isVideoStreamId(id) && this.#acceptsVideo(id)) {
        const header = parsePesHeader(view, 6 + 0xffff);
        if (header === undefined) return;
        if (header === 'invalid') {
          this.#discard(4);
          continue;
        }
        this.#notePts(header.pts);
        this.#stats.videoPes++;
        this.#queue.consume(header.payloadOffset);
        this.#inUnboundedPes = true;
        continue;
      }
      if (view.length < 6 + length) return;
      const packet = view.subarray(0, 6 + length);
      if (!this.#handlePacket(id, packet, out)) {
        this.#discard(4);
        continue;
      }
      this.#queue.consume(6 + length);
    }
  }

  /** Handles one complete PES-syntax packet; false when its header is broken. */
  #handlePacket(id: number, packet: Buffer, out: VideoAccessUnit[]): boolean {
    if (id === 0xbb) {
      this.#stats.systemHeaders++;
      return true;
    }
    if (id === 0xbc) {
      const codec = parseProgramStreamMap(packet);
      if (codec === 'invalid') return false;
      this.#stats.programStreamMaps++;
      if (codec !== undefined && codec !== this.#codec) this.#switchCodec(codec);
      return true;
    }
    if (!isVideoStreamId(id) || !this.#acceptsVideo(id)) {
      this.#stats.skippedPes++;
      return true;
    }
    const header = parsePesHeader(packet, packet.length);
    if (header === undefined || header === 'invalid') return false;
    this.#stats.videoPes++;
    this.#notePts(header.pts);
    this.#feedVideo(packet.subarray(header.payloadOffset), out);
    return true;
  }

  #acceptsVideo(id: number): boolean {
    this.#videoStreamId ??= id;
    return id === this.#videoStreamId;
  }

  #notePts(pts: number | undefined): void {
    if (pts === undefined) return;
    this.#pendingPts.push({ offset: this.#splitter.bytesIn, pts });
    if (this.#pendingPts.length > MAX_PENDING_PTS) this.#pendingPts.shift();
  }

  #feedVideo(payload: Uint8Array, out: VideoAccessUnit[]): void {
    if (payload.length > 0) this.#deliver(this.#splitter.push(payload), out);
  }

  #deliver(units: AnnexBAccessUnit[], out: VideoAccessUnit[]): void {
    for (const unit of units) {
      const pts = this.#ptsFor(unit.startOffset);
      if (this.#needKeyframe && !unit.keyframe) {
        this.#stats.droppedAccessUnits++;
        continue;
      }
      this.#needKeyframe = false;
      this.#stats.accessUnits++;
      out.push({ codec: this.#codec, pts90k: pts, data: unit.data, keyframe: unit.keyframe });
    }
  }

  /** ISO/IEC 13818-1 §2.4.3.7: a PES packet's PTS belongs to the first access unit starting in it. */
  #ptsFor(startOffset: number): number {
    let pts: number | undefined;
    for (let head = this.#pendingPts[0]; head && head.offset <= startOffset; head = this.#pendingPts[0]) {
      pts = head.pts;
      this.#pendingPts.shift();
    }
    if (pts === undefined) {
      pts = this.#lastPts === undefined ? 0 : (this.#lastPts + this.#ptsStep) % PTS_MODULO;
    } else if (this.#lastPts !== undefined) {
      const step = (pts - this.#lastPts + PTS_MODULO) % PTS_MODULO;
      if (step > 0 && step < 90_000) this.#ptsStep = step;
    }
    this.#lastPts = pts;
    return pts;
  }

  #switchCodec(codec: VideoCodec): void {
    this.#stats.discardedBytes += this.#splitter.discardedBytes + this.#splitter.discard();
    this.#codec = codec;
    this.#splitter = new AccessUnitSplitter(codec, this.#maxAuBytes);
    this.#pendingPts = [];
  }

  #discard(n: number): void {
    if (n <= 0) return;
    this.#queue.consume(n);
    this.#stats.discardedBytes += n;
  }
}

/** Index of the next `00 00 01 xx` with xx >= 0xB9 (pack, system or PES start) at or after `from`, or -1. */
export function findSystemStartCode(data: Buffer, from: number): number {
  for (let i = from; i + 3 < data.length; i++) {
    if (data[i] === 0 && data[i + 1] === 0 && data[i + 2] === 1 && data.readUInt8(i + 3) >= 0xb9) return i;
  }
  return -1;
}

function isVideoStreamId(id: number): boolean {
  return id >= 0xe0 && id <= 0xef;
}

/** Pack header length (MPEG-2 with stuffing, or MPEG-1); undefined = need more bytes; -1 = not a pack header. */
function packHeaderLength(view: Buffer): number | undefined {
  if (view.length < 5) return undefined;
  const b4 = view.readUInt8(4);
  if ((b4 & 0xc0) === 0x40) {
    if (view.length < 14) return undefined;
    // ISO/IEC 13818-1 Table 2-33 marker bits.
    const markersOk =
      (b4 & 0x04) !== 0 &&
      (view.readUInt8(6) & 0x04) !== 0 &&
      (view.readUInt8(8) & 0x04) !== 0 &&
      (view.readUInt8(9) & 0x01) !== 0 &&
      (view.readUInt8(12) & 0x03) === 0x03;
    if (!markersOk) return -1;
    const length = 14 + (view.readUInt8(13) & 0x07);
    return view.length < length ? undefined : length;
  }
  if ((b4 & 0xf0) === 0x20) return view.length < 12 ? undefined : 12; // ISO/IEC 11172-1 pack
  return -1;
}

/** Where a PES payload starts and its PTS; undefined = need more bytes; 'invalid' = broken header. */
function parsePesHeader(
  packet: Buffer,
  packetEnd: number,
): { payloadOffset: number; pts: number | undefined } | 'invalid' | undefined {
  if (packet.length < 7) return packet.length >= packetEnd ? 'invalid' : undefined;
  const b6 = packet.readUInt8(6);
  if ((b6 & 0xc0) === 0x80) {
    // MPEG-2 PES header (ISO/IEC 13818-1 Table 2-21).
    if (packet.length < 9) return packet.length >= packetEnd ? 'invalid' : undefined;
    const flags = packet.readUInt8(7);
    const payloadOffset = 9 + packet.readUInt8(8);
    if (payloadOffset > packetEnd) return 'invalid';
    if (packet.length < payloadOffset) return undefined;
    const hasPts = (flags & 0x80) !== 0;
    if (hasPts && payloadOffset < 14) return 'invalid';
    return { payloadOffset, pts: hasPts ? readTimestamp(packet, 9) : undefined };
  }
  // MPEG-1 PES header (ISO/IEC 11172-1 §2.4.3.3): stuffing, STD buffer, then PTS/DTS or 0x0F.
  let i = 6;
  while (i < packet.length && packet[i] === 0xff && i < 6 + 16) i++;
  if (i < packet.length && (packet.readUInt8(i) & 0xc0) === 0x40) i += 2;
  if (i >= packet.length) return packet.length >= packetEnd ? 'invalid' : undefined;
  const b = packet.readUInt8(i);
  let payloadOffset: number;
  let pts: number | undefined;
  if ((b & 0xf0) === 0x20) payloadOffset = i + 5;
  else if ((b & 0xf0) === 0x30) payloadOffset = i + 10;
  else if (b === 0x0f) payloadOffset = i + 1;
  else return 'invalid';
  if (payloadOffset > packetEnd) return 'invalid';
  if (packet.length < payloadOffset) return undefined;
  if (payloadOffset > i + 1) pts = readTimestamp(packet, i);
  return { payloadOffset, pts };
}

/** Codec of the first video stream a PSM lists; undefined if none we know; 'invalid' if malformed. */
function parseProgramStreamMap(packet: Buffer): VideoCodec | undefined | 'invalid' {
  if (packet.length < 16) return 'invalid';
  const infoLength = packet.readUInt16BE(8);
  const mapLengthAt = 10 + infoLength;
  if (mapLengthAt + 2 > packet.length) return 'invalid';
  const mapEnd = mapLengthAt + 2 + packet.readUInt16BE(mapLengthAt);
  if (mapEnd > packet.length) return 'invalid';
  for (let i = mapLengthAt + 2; i + 4 <= mapEnd; ) {
    const streamType = packet.readUInt8(i);
    const streamId = packet.readUInt8(i + 1);
    i += 4 + packet.readUInt16BE(i + 2);
    if (!isVideoStreamId(streamId)) continue;
    if (streamType === 0x1b) return 'h264';
    if (streamType === 0x24) return 'h265';
  }
  return undefined;
}
