/** RTP over TCP framing: a 16-bit big-endian length before every packet (RFC 4571 §2). */
import type { CitysenseError } from '@citysense/protocol';
import { ByteQueue } from './byte-queue.ts';
import { mediaError, RTP_FRAMING } from './errors.ts';
import { RTP_HEADER_BYTES } from './rtp.ts';

/** Largest packet an RFC 4571 frame can carry. */
export const MAX_RFC4571_PACKET = 0xffff;

/** Prefixes `packet` with its RFC 4571 length; throws CS_ERR_RTP_FRAMING for 0 or > 65535 bytes. */
export function frameRtpForTcp(packet: Uint8Array): Buffer {
  if (packet.length === 0 || packet.length > MAX_RFC4571_PACKET) {
    throw mediaError(RTP_FRAMING, `an RFC 4571 frame carries 1..65535 bytes, not ${packet.length}`);
  }
  const out = Buffer.allocUnsafe(2 + packet.length);
  out.writeUInt16BE(packet.length, 0);
  out.set(packet, 2);
  return out;
}

/** What one `push` produced: whole packets, bytes skipped to resynchronise, and the framing error if any. */
export interface DeframeResult {
  packets: Buffer[];
  discardedBytes: number;
  error: CitysenseError | undefined;
}

/**
 * Incremental RFC 4571 deframer for one TCP connection. Packets may be split across or packed
 * into TCP chunks in any way. A length below `minPacketBytes` (0, or shorter than an RTP header)
 * cannot be right: the stream is out of step, so the deframer reports CS_ERR_RTP_FRAMING and skips
 * bytes until a plausible frame (sane length followed by an RTP version-2 byte) starts.
 */
export class RtpTcpDeframer {
  readonly #queue = new ByteQueue();
  readonly #minPacketBytes: number;
  #resyncing = false;
  #discardedBytes = 0;

  constructor(minPacketBytes = RTP_HEADER_BYTES) {
    this.#minPacketBytes = Math.max(1, minPacketBytes);
  }

  /** Total bytes skipped while resynchronising. */
  get discardedBytes(): number {
    return this.#discardedBytes;
  }

  /** Bytes held waiting for the rest of a frame. */
  get buffered(): number {
    return this.#queue.length;
  }

  /** Feeds one TCP chunk; returns the packets it completed. Never throws. */
  push(chunk: Uint8Array): DeframeResult {
    this.#queue.append(chunk);
    const packets: Buffer[] = [];
    let discarded = 0;
    let error: CitysenseError | undefined;
    for (;;) {
      const view = this.#queue.view();
      if (view.length < 2) break;
      const length = view.readUInt16BE(0);
      if (this.#resyncing) {
        if (view.length < 3) break;
        if (length < this.#minPacketBytes || (view.readUInt8(2) & 0xc0) !== 0x80) {
          this.#queue.consume(1);
          discarded++;
          continue;
        }
        this.#resyncing = false;
      } else if (length < this.#minPacketBytes) {
        error ??= mediaError(
          RTP_FRAMING,
          `RFC 4571 length ${length} is below ${this.#minPacketBytes}; the TCP stream is out of step, resynchronising`,
        );
        this.#resyncing = true;
        this.#queue.consume(1);
        discarded++;
        continue;
      }
      if (view.length < 2 + length) break;
      packets.push(Buffer.from(view.subarray(2, 2 + length)));
      this.#queue.consume(2 + length);
    }
    this.#discardedBytes += discarded;
    return { packets, discardedBytes: discarded, error };
  }
}
