/** Cuts the PS bytes of one picture into RTP packets (GB/T 28181-2016 Annex C: PT 96, 90 kHz clock). */
import { randomInt } from 'node:crypto';
import { buildRtp } from './rtp.ts';

/** Dynamic payload type GB/T 28181 SDP maps to `PS/90000`. */
export const PS_PAYLOAD_TYPE = 96;
/** Default largest RTP payload: keeps a packet under a 1500-byte Ethernet MTU with IP/UDP headers. */
export const DEFAULT_MAX_RTP_PAYLOAD = 1400;

/** Settings of one RTP stream. */
export interface PsRtpPacketizerOptions {
  /** SSRC from the SDP `y=` line. */
  ssrc: number;
  payloadType?: number;
  maxPayloadBytes?: number;
  /** First sequence number; random by default (RFC 3550 §5.1). */
  initialSequenceNumber?: number;
}

/** Packetises PS pictures into one RTP stream, keeping its sequence number. */
export class PsRtpPacketizer {
  readonly #ssrc: number;
  readonly #payloadType: number;
  readonly #maxPayload: number;
  #sequence: number;

  constructor(options: PsRtpPacketizerOptions) {
    this.#ssrc = options.ssrc >>> 0;
    this.#payloadType = options.payloadType ?? PS_PAYLOAD_TYPE;
    this.#maxPayload = Math.max(1, options.maxPayloadBytes ?? DEFAULT_MAX_RTP_PAYLOAD);
    this.#sequence = (options.initialSequenceNumber ?? randomInt(0x10000)) & 0xffff;
  }

  /** Sequence number the next packet will carry. */
  get nextSequenceNumber(): number {
    return this.#sequence;
  }

  /** RTP packets for one picture's PS bytes; the marker is set on the last one (end of frame). */
  packetize(ps: Buffer, pts90k: number): Buffer[] {
    const packets: Buffer[] = [];
    const timestamp = Math.trunc(pts90k) % 2 ** 32;
    for (let offset = 0; offset < ps.length; offset += this.#maxPayload) {
      const payload = ps.subarray(offset, offset + this.#maxPayload);
      packets.push(
        buildRtp({
          marker: offset + payload.length >= ps.length,
          payloadType: this.#payloadType,
          sequenceNumber: this.#sequence,
          timestamp,
          ssrc: this.#ssrc,
          payload,
        }),
      );
      this.#sequence = (this.#sequence + 1) & 0xffff;
    }
    return packets;
  }
}
