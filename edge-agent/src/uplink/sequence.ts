import { join } from 'node:path';
import type { Logger } from '@citysense/protocol';
import { readFileIfExists, writeFileAtomic } from '../state-file.ts';

/** Sparkplug 3.0 §6.4.2 / §6.4.5: `seq` and `bdSeq` are 0–255 and wrap. */
const MODULO = 256;

/** Message sequence number: 0 on NBIRTH, +1 on every later message but NDEATH, wrapping at 256. */
export class MessageSequence {
  #next = 0;

  /** Restarts at 0; the next message is an NBIRTH. */
  reset(): void {
    this.#next = 0;
  }

  /** The seq for the message about to be published. */
  take(): number {
    const seq = this.#next;
    this.#next = (this.#next + 1) % MODULO;
    return seq;
  }
}

/** File name of the persisted bdSeq inside the state dir. */
export const BD_SEQ_FILE = 'bdseq.json';

/**
 * Birth/death sequence number, Sparkplug 3.0 §6.4.5: incremented on every MQTT
 * CONNECT attempt (the Will carries it) and repeated in the NBIRTH that follows.
 * Persisted so a restarted agent does not reuse the last session's value, which
 * would let a stale NDEATH kill the new session at the host.
 */
export class BdSeqStore {
  readonly #path: string;
  readonly #log: Logger;
  #last: number | null | undefined;

  constructor(stateDir: string, logger: Logger) {
    this.#path = join(stateDir, BD_SEQ_FILE);
    this.#log = logger;
  }

  /** Takes and persists the bdSeq for the next connection attempt (0 on the very first). */
  async next(): Promise<number> {
    if (this.#last === undefined) this.#last = await this.#load();
    const value = this.#last === null ? 0 : (this.#last + 1) % MODULO;
    await writeFileAtomic(this.#path, `${JSON.stringify({ bdSeq: value })}\n`, 0o600);
    this.#last = value;
    return value;
  }

  async #load(): Promise<number | null> {
    const text = await readFileIfExists(this.#path);
    if (text === null) return null;
    try {
      const { bdSeq } = JSON.parse(text) as { bdSeq?: unknown };
      if (typeof bdSeq === 'number' && Number.isInteger(bdSeq) && bdSeq >= 0 && bdSeq < MODULO) return bdSeq;
    } catch {
      // fall through: a corrupt file only costs the continuity of bdSeq
    }
    this.#log.warn({ path: this.#path }, 'bdSeq file unreadable, starting again from 0');
    return null;
  }
}
