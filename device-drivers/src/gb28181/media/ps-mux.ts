/**
 * MPEG-2 Program Stream muxer as GB/T 28181 devices send it (GB/T 28181-2016 Annex C,
 * ISO/IEC 13818-1 §2.5): per access unit a pack header, on keyframes a system header and a
 * program stream map, then video PES packets (stream id 0xE0) carrying the PTS.
 */
import type { VideoAccessUnit, VideoCodec } from './access-unit.ts';
import { mediaError, PS_MUX_INVALID } from './errors.ts';

/** MPEG stream_type of each codec in the PSM (ISO/IEC 13818-1 Table 2-34). */
export const PS_STREAM_TYPE: Readonly<Record<VideoCodec, number>> = { h264: 0x1b, h265: 0x24 };
/** PES stream id of the (first) video stream. */
export const PS_VIDEO_STREAM_ID = 0xe0;
/** Largest PES_packet_length (16 bits). */
export const MAX_PES_PACKET_LENGTH = 0xffff;

/** Tuning of the PS muxer. */
export interface PsMuxOptions {
  /** program_mux_rate in bytes per second (written in 50 B/s units). Default 2.5 Mbit/s. */
  muxRateBytesPerSecond?: number;
  /** Stuffing bytes (0-7) after each pack header, as some cameras send. Default 0. */
  packStuffingBytes?: number;
  /** Largest PES_packet_length; frames longer than this are split over several PES packets. */
  maxPesPacketLength?: number;
}

const PTS_MODULO = 2 ** 33;

/** Muxes access units into GB/T 28181-style MPEG-PS; keeps the PSM version across calls. */
export class PsMuxer {
  readonly #muxRate: number;
  readonly #stuffing: number;
  readonly #maxPes: number;

  constructor(options: PsMuxOptions = {}) {
    this.#muxRate = Math.max(1, Math.ceil((options.muxRateBytesPerSecond ?? 312_500) / 50)) & 0x3fffff;
    this.#stuffing = Math.min(Math.max(Math.trunc(options.packStuffingBytes ?? 0), 0), 7);
    this.#maxPes = Math.min(
      Math.max(options.maxPesPacketLength ?? MAX_PES_PACKET_LENGTH, 64),
      MAX_PES_PACKET_LENGTH,
    );
  }

  /** The PS bytes of one access unit; throws CS_ERR_PS_MUX_INVALID for an empty unit or a bad PTS. */
  mux(au: VideoAccessUnit): Buffer {
    if (au.data.length === 0) throw mediaError(PS_MUX_INVALID, 'cannot mux an empty access unit');
    if (!Number.isFinite(au.pts90k) || au.pts90k < 0) {
      throw mediaError(PS_MUX_INVALID, `PTS ${au.pts90k} is not a non-negative 90 kHz timestamp`);
    }
    const pts = Math.trunc(au.pts90k) % PTS_MODULO;
    const parts: Buffer[] = [this.#packHeader(pts)];
    if (au.keyframe) parts.push(this.#systemHeader(), programStreamMap(au.codec));
    let offset = 0;
    let first = true;
    while (offset < au.data.length) {
      const headerData = first ? 5 : 0;
      const room = this.#maxPes - 3 - headerData;
      const payload = au.data.subarray(offset, offset + room);
      parts.push(pesPacket(payload, first ? pts : undefined));
      offset += payload.length;
      first = false;
    }
    return Buffer.concat(parts);
  }

  #packHeader(scr: number): Buffer {
    // ISO/IEC 13818-1 Table 2-33; SCR = PTS is enough for a live stream with no B-frames.
    const out = Buffer.alloc(14 + this.#stuffing, 0xff);
    out.writeUInt32BE(0x000001ba, 0);
    const high3 = Math.floor(scr / 2 ** 30) & 0x07;
    const low30 = scr % 2 ** 30;
    out.writeUInt8(0x44 | (high3 << 3) | ((low30 >>> 28) & 0x03), 4);
    out.writeUInt8((low30 >>> 20) & 0xff, 5);
    out.writeUInt8((((low30 >>> 15) & 0x1f) << 3) | 0x04 | ((low30 >>> 13) & 0x03), 6);
    out.writeUInt8((low30 >>> 5) & 0xff, 7);
    out.writeUInt8(((low30 & 0x1f) << 3) | 0x04, 8); // SCR extension 0
    out.writeUInt8(0x01, 9);
    const rate = this.#muxRate;
    out.writeUInt8((rate >>> 14) & 0xff, 10);
    out.writeUInt8((rate >>> 6) & 0xff, 11);
    out.writeUInt8(((rate & 0x3f) << 2) | 0x03, 12);
    out.writeUInt8(0xf8 | this.#stuffing, 13);
    return out;
  }

  #systemHeader(): Buffer {
    // ISO/IEC 13818-1 Table 2-34: one video stream, P-STD buffer 232 KiB.
    const out = Buffer.alloc(15);
    out.writeUInt32BE(0x000001bb, 0);
    out.writeUInt16BE(9, 4);
    const rateBound = 0x800001 | (this.#muxRate << 1);
    out.writeUInt8((rateBound >>> 16) & 0xff, 6);
    out.writeUInt8((rateBound >>> 8) & 0xff, 7);
    out.writeUInt8(rateBound & 0xff, 8);
    out.writeUInt8(0x00, 9); // audio_bound 0, fixed_flag 0, CSPS_flag 0
    out.writeUInt8(0xe1, 10); // audio lock, video lock, marker, video_bound 1
    out.writeUInt8(0x7f, 11); // packet_rate_restriction 0, reserved
    out.writeUInt8(PS_VIDEO_STREAM_ID, 12);
    out.writeUInt8(0xe0, 13); // '11', buffer scale 1 (1024 B), size bound high bits
    out.writeUInt8(0xe8, 14);
    return out;
  }
}

/** The program stream map naming stream 0xE0 as `codec` (ISO/IEC 13818-1 §2.5.4). */
export function programStreamMap(codec: VideoCodec, version = 0): Buffer {
  const out = Buffer.alloc(20);
  out.writeUInt32BE(0x000001bc, 0);
  out.writeUInt16BE(14, 4);
  out.writeUInt8(0xe0 | (version & 0x1f), 6); // current_next_indicator 1
  out.writeUInt8(0xff, 7);
  out.writeUInt16BE(0, 8); // program_stream_info_length
  out.writeUInt16BE(4, 10); // elementary_stream_map_length
  out.writeUInt8(PS_STREAM_TYPE[codec], 12);
  out.writeUInt8(PS_VIDEO_STREAM_ID, 13);
  out.writeUInt16BE(0, 14); // elementary_stream_info_length
  out.writeUInt32BE(mpegCrc32(out.subarray(0, 16)), 16);
  return out;
}

/** One video PES packet (stream 0xE0) with an optional PTS. */
export function pesPacket(payload: Buffer, pts: number | undefined): Buffer {
  const headerData = pts === undefined ? 0 : 5;
  const length = 3 + headerData + payload.length;
  if (length > MAX_PES_PACKET_LENGTH) {
    throw mediaError(PS_MUX_INVALID, `PES payload of ${payload.length} bytes exceeds PES_packet_length`);
  }
  const out = Buffer.alloc(6 + length);
  out.writeUInt32BE(0x000001e0, 0);
  out.writeUInt16BE(length, 4);
  out.writeUInt8(pts === undefined ? 0x80 : 0x84, 6); // '10', data_alignment_indicator on the first PES
  out.writeUInt8(pts === undefined ? 0x00 : 0x80, 7); // PTS_DTS_flags '10'
  out.writeUInt8(headerData, 8);
  if (pts !== undefined) writeTimestamp(out, 9, 0x2, pts);
  payload.copy(out, 9 + headerData);
  return out;
}

/** Writes a 33-bit PES timestamp with its 4-bit prefix (ISO/IEC 13818-1 §2.4.3.7). */
export function writeTimestamp(out: Buffer, offset: number, prefix: number, value: number): void {
  const v = Math.trunc(value) % PTS_MODULO;
  const high3 = Math.floor(v / 2 ** 30) & 0x07;
  const low30 = v % 2 ** 30;
  out.writeUInt8((prefix << 4) | (high3 << 1) | 0x01, offset);
  out.writeUInt8((low30 >>> 22) & 0xff, offset + 1);
  out.writeUInt8(((low30 >>> 14) & 0xfe) | 0x01, offset + 2);
  out.writeUInt8((low30 >>> 7) & 0xff, offset + 3);
  out.writeUInt8(((low30 << 1) & 0xfe) | 0x01, offset + 4);
}

/** Reads a 33-bit PES timestamp written by `writeTimestamp`. */
export function readTimestamp(data: Buffer, offset: number): number {
  const high3 = (data.readUInt8(offset) >> 1) & 0x07;
  const low30 =
    (data.readUInt8(offset + 1) << 22) |
    ((data.readUInt8(offset + 2) >> 1) << 15) |
    (data.readUInt8(offset + 3) << 7) |
    (data.readUInt8(offset + 4) >> 1);
  return high3 * 2 ** 30 + low30;
}

/** CRC-32/MPEG-2 (poly 0x04C11DB7, no reflection), as the PSM's CRC_32 field uses. */
export function mpegCrc32(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of data) {
    crc ^= byte << 24;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x80000000 ? (crc << 1) ^ 0x04c11db7 : crc << 1;
  }
  return crc >>> 0;
}
