/** Puts RTP packets back in sequence-number order over a small window and counts the missing ones. */
import type { RtpPacket } from './rtp.ts';

/** A packet released in order; `afterGap` when packets before it were given up as lost. */
export interface ReorderedPacket {
  packet: RtpPacket;
  afterGap: boolean;
}

/** What one push or skip released. */
export interface ReorderResult {
  packets: ReorderedPacket[];
  /** Sequence numbers given up as lost by this call. */
  lost: number;
  /** The packet was a duplicate or arrived after its place had been given up. */
  late: boolean;
}

/** Largest forward jump still counted as loss rather than a sender restart (RFC 3550 Appendix A.1). */
export const MAX_DROPOUT = 3000;

/** Signed distance from `from` to `to` in 16-bit sequence space (RFC 3550 Appendix A.1). */
export function sequenceDistance(from: number, to: number): number {
  return ((to - from + 0x8000) & 0xffff) - 0x8000;
}

/**
 * Reorder buffer: packets ahead of the expected sequence number wait (at most `window` of them)
 * for the missing ones; when the window fills, or the owner calls `skipGap()` on a timer, the gap
 * is given up as lost. A jump of more than `window` either way (sender restart) resynchronises.
 */
export class RtpReorderBuffer {
  readonly #window: number;
  readonly #held = new Map<number, RtpPacket>();
  #expected: number | undefined;
  #priming = false;

  constructor(window = 32) {
    this.#window = Math.max(1, window);
  }

  /** Packets waiting for a missing predecessor. */
  get held(): number {
    return this.#held.size;
  }

  /** Accepts one packet; returns the packets now releasable in order. */
  push(packet: RtpPacket): ReorderResult {
    const result: ReorderResult = { packets: [], lost: 0, late: false };
    const seq = packet.sequenceNumber;
    if (this.#expected === undefined || this.#priming) return this.#prime(packet, result);
    const distance = sequenceDistance(this.#expected, seq);
    let afterGap = false;
    if (distance < -this.#window || distance > this.#window) {
      this.#restart(seq, result);
      afterGap = true;
    } else if (distance < 0) {
      result.late = true;
      return result;
    } else if (distance > 0) {
      if (this.#held.has(seq)) result.late = true;
      else this.#held.set(seq, packet);
      if (this.#held.size >= this.#window) this.#skip(result);
      return result;
    }
    result.packets.push({ packet, afterGap });
    this.#expected = (seq + 1) & 0xffff;
    this.#drain(result, false);
    return result;
  }

  /**
   * Start of a stream: the first packet may itself arrive late, so nothing is released until two
   * consecutive packets are held (or the window fills, or `skipGap()`); an earlier packet that
   * arrives meanwhile becomes the start.
   */
  #prime(packet: RtpPacket, result: ReorderResult): ReorderResult {
    const seq = packet.sequenceNumber;
    this.#priming = true;
    this.#expected ??= seq;
    const distance = sequenceDistance(this.#expected, seq);
    if (distance < 0 && -distance <= this.#window) this.#expected = seq;
    if (this.#held.has(seq)) result.late = true;
    else this.#held.set(seq, packet);
    const expected = this.#expected;
    if (this.#held.has(expected) && this.#held.has((expected + 1) & 0xffff)) {
      this.#priming = false;
      this.#drain(result, false);
    } else if (this.#held.size >= this.#window) {
      this.#skip(result);
    }
    return result;
  }

  /** Gives up waiting for the missing packet(s) before the oldest held one. */
  skipGap(): ReorderResult {
    const result: ReorderResult = { packets: [], lost: 0, late: false };
    this.#skip(result);
    return result;
  }

  /** Forgets all state (new stream). */
  reset(): void {
    this.#held.clear();
    this.#expected = undefined;
    this.#priming = false;
  }

  #skip(result: ReorderResult): void {
    if (this.#expected === undefined || this.#held.size === 0) return;
    const firstRelease = this.#priming;
    this.#priming = false;
    let nearest = Number.POSITIVE_INFINITY;
    for (const seq of this.#held.keys()) nearest = Math.min(nearest, sequenceDistance(this.#expected, seq));
    result.lost += nearest;
    this.#expected = (this.#expected + nearest) & 0xffff;
    this.#drain(result, !firstRelease);
  }

  /** Sender restarted or jumped far: release what is held in order, then continue from `seq`. */
  #restart(seq: number, result: ReorderResult): void {
    while (this.#held.size > 0) this.#skip(result);
    const distance = sequenceDistance(this.#expected ?? seq, seq);
    // RFC 3550 Appendix A.1 MAX_DROPOUT: a longer jump forward, or any jump back, is a restart, not loss.
    if (distance > 0 && distance <= MAX_DROPOUT) result.lost += distance;
    this.#expected = seq;
  }

  #drain(result: ReorderResult, afterGap: boolean): void {
    let gap = afterGap;
    for (;;) {
      const expected = this.#expected ?? 0;
      const packet = this.#held.get(expected);
      if (!packet) return;
      this.#held.delete(expected);
      result.packets.push({ packet, afterGap: gap });
      gap = false;
      this.#expected = (expected + 1) & 0xffff;
    }
  }
}
