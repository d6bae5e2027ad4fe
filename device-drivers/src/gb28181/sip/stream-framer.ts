/**
 * Frames SIP messages on a stream transport (RFC 3261 §18.3): a head ends at the blank
 * line and the body is exactly Content-Length bytes, which TCP requires.
 */
import { DEFAULT_SIP_LIMITS, headEnd, type SipLimits, SipParseError } from './message.ts';

const CONTENT_LENGTH = /^(?:content-length|l)[ \t]*:[ \t]*(\d{1,7})[ \t]*$/im;

/** Collects stream chunks and yields whole messages; throws SipParseError when the stream cannot be framed. */
export class SipStreamFramer {
  readonly #limits: SipLimits;
  #pending: Buffer = Buffer.alloc(0);

  constructor(limits: SipLimits = DEFAULT_SIP_LIMITS) {
    this.#limits = limits;
  }

  /** Adds a chunk and returns every message it completes, in order. */
  push(chunk: Buffer): Buffer[] {
    this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    const out: Buffer[] = [];
    for (;;) {
      // Keep-alive CRLFs between messages (RFC 5626 §3.5.1) are skipped.
      let skip = 0;
      while (skip + 1 < this.#pending.length && this.#pending[skip] === 13 && this.#pending[skip + 1] === 10)
        skip += 2;
      if (skip > 0) this.#pending = this.#pending.subarray(skip);
      const end = headEnd(this.#pending);
      if (end < 0) {
        if (this.#pending.length > this.#limits.maxMessageBytes)
          throw new SipParseError(`no end of headers within ${this.#limits.maxMessageBytes} bytes`, 513);
        return out;
      }
      const head = this.#pending.subarray(0, end).toString('latin1');
      const m = CONTENT_LENGTH.exec(head);
      if (!m) throw new SipParseError('a message on a stream transport has no Content-Length');
      const total = end + 4 + Number(m[1]);
      if (total > this.#limits.maxMessageBytes)
        throw new SipParseError(`message is ${total} bytes, more than ${this.#limits.maxMessageBytes}`, 513);
      if (this.#pending.length < total) return out;
      out.push(Buffer.from(this.#pending.subarray(0, total)));
      this.#pending = this.#pending.subarray(total);
    }
  }
}
