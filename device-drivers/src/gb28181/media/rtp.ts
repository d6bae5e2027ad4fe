/** RTP packet parse and build (RFC 3550 §5.1). */
import type { CitysenseError } from '@citysense/protocol';
import { mediaError, RTP_INVALID } from './errors.ts';

/** RTP header extension (RFC 3550 §5.3.1): a profile-defined 16-bit id and 32-bit-word data. */
export interface RtpHeaderExtension {
  profile: number;
  data: Buffer;
}

/** A parsed RTP packet; `payload` is a view into the parsed buffer, padding removed. */
export interface RtpPacket {
  padding: boolean;
  marker: boolean;
  payloadType: number;
  sequenceNumber: number;
  timestamp: number;
  ssrc: number;
  csrcs: number[];
  extension: RtpHeaderExtension | undefined;
  payload: Buffer;
}

/** What `buildRtp` needs; omitted fields default to no marker, no CSRC, no extension, no padding. */
export interface RtpPacketInit {
  marker?: boolean;
  payloadType: number;
  sequenceNumber: number;
  timestamp: number;
  ssrc: number;
  csrcs?: number[];
  extension?: RtpHeaderExtension;
  /** Padding bytes to append (1..255), e.g. for block ciphers; 0 or absent for none. */
  paddingLength?: number;
  payload: Uint8Array;
}

/** Result of `parseRtp`: the packet, or a CS_ERR_RTP_INVALID error saying what is wrong. */
export type RtpParseResult = { ok: true; packet: RtpPacket } | { ok: false; error: CitysenseError };

/** Length of the fixed RTP header. */
export const RTP_HEADER_BYTES = 12;

/** Parses one RTP packet; garbage yields `{ ok: false }` with code CS_ERR_RTP_INVALID, never a throw. */
export function parseRtp(data: Buffer): RtpParseResult {
  if (data.length < RTP_HEADER_BYTES) return invalid(`${data.length} bytes is shorter than an RTP header`);
  const b0 = data.readUInt8(0);
  const b1 = data.readUInt8(1);
  const version = b0 >> 6;
  if (version !== 2) return invalid(`RTP version ${version}, expected 2`);
  // RTCP multiplexed on the RTP port (RFC 5761 §4) has packet types 200-204, which read as M=1, PT 72-76.
  if (b1 >= 0xc8 && b1 <= 0xcc) return invalid('an RTCP packet, not RTP');
  const padding = (b0 & 0x20) !== 0;
  const hasExtension = (b0 & 0x10) !== 0;
  const csrcCount = b0 & 0x0f;
  let offset = RTP_HEADER_BYTES + 4 * csrcCount;
  if (offset > data.length) return invalid(`${csrcCount} CSRCs do not fit in ${data.length} bytes`);
  const csrcs: number[] = [];
  for (let i = 0; i < csrcCount; i++) csrcs.push(data.readUInt32BE(RTP_HEADER_BYTES + 4 * i));
  let extension: RtpHeaderExtension | undefined;
  if (hasExtension) {
    if (offset + 4 > data.length) return invalid('header extension truncated');
    const profile = data.readUInt16BE(offset);
    const words = data.readUInt16BE(offset + 2);
    offset += 4;
    if (offset + 4 * words > data.length) return invalid('header extension longer than the packet');
    extension = { profile, data: data.subarray(offset, offset + 4 * words) };
    offset += 4 * words;
  }
  let end = data.length;
  if (padding) {
    const padLength = data.readUInt8(end - 1);
    if (padLength === 0 || padLength > end - offset)
      return invalid(`padding length ${padLength} is impossible`);
    end -= padLength;
  }
  return {
    ok: true,
    packet: {
      padding,
      marker: (b1 & 0x80) !== 0,
      payloadType: b1 & 0x7f,
      sequenceNumber: data.readUInt16BE(2),
      timestamp: data.readUInt32BE(4),
      ssrc: data.readUInt32BE(8),
      csrcs,
      extension,
      payload: data.subarray(offset, end),
    },
  };
}

/** Serialises an RTP packet; throws CS_ERR_RTP_INVALID when a field is out of range. */
export function buildRtp(init: RtpPacketInit): Buffer {
  const csrcs = init.csrcs ?? [];
  const paddingLength = init.paddingLength ?? 0;
  checkRange('payloadType', init.payloadType, 0x7f);
  checkRange('sequenceNumber', init.sequenceNumber, 0xffff);
  checkRange('timestamp', init.timestamp, 0xffffffff);
  checkRange('ssrc', init.ssrc, 0xffffffff);
  checkRange('paddingLength', paddingLength, 0xff);
  if (csrcs.length > 15) throw mediaError(RTP_INVALID, `at most 15 CSRCs fit in RTP, got ${csrcs.length}`);
  const ext = init.extension;
  if (ext && ext.data.length % 4 !== 0) {
    throw mediaError(RTP_INVALID, 'RTP header extension data must be a whole number of 32-bit words');
  }
  const extBytes = ext ? 4 + ext.data.length : 0;
  const headerBytes = RTP_HEADER_BYTES + 4 * csrcs.length + extBytes;
  const out = Buffer.alloc(headerBytes + init.payload.length + paddingLength);
  out.writeUInt8(0x80 | (paddingLength > 0 ? 0x20 : 0) | (ext ? 0x10 : 0) | csrcs.length, 0);
  out.writeUInt8((init.marker ? 0x80 : 0) | init.payloadType, 1);
  out.writeUInt16BE(init.sequenceNumber, 2);
  out.writeUInt32BE(init.timestamp, 4);
  out.writeUInt32BE(init.ssrc, 8);
  let offset = RTP_HEADER_BYTES;
  for (const csrc of csrcs) {
    checkRange('csrc', csrc, 0xffffffff);
    out.writeUInt32BE(csrc, offset);
    offset += 4;
  }
  if (ext) {
    checkRange('extension.profile', ext.profile, 0xffff);
    out.writeUInt16BE(ext.profile, offset);
    out.writeUInt16BE(ext.data.length / 4, offset + 2);
    out.set(ext.data, offset + 4);
    offset += extBytes;
  }
  out.set(init.payload, offset);
  if (paddingLength > 0) out.writeUInt8(paddingLength, out.length - 1);
  return out;
}

function invalid(reason: string): RtpParseResult {
  return { ok: false, error: mediaError(RTP_INVALID, `not an RTP packet: ${reason}; check the sender`) };
}

function checkRange(name: string, value: number, max: number): void {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw mediaError(RTP_INVALID, `RTP ${name} ${value} is outside 0..${max}`);
  }
}
