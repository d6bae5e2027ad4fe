/** Live SSRCs of a platform (GB/T 28181-2016 Annex F): unique among its open dialogs. */
import { CitysenseError, liveSsrc } from '@citysense/protocol';

/** Allocates live SSRCs: `0` + digits 4–8 of the SIP domain + a 4-digit sequence (Annex F). */
export class SsrcAllocator {
  readonly #domain: string;
  #next = 1;
  readonly #used = new Set<string>();

  constructor(domain: string) {
    this.#domain = domain;
  }

  /** A fresh SSRC not in use. */
  allocate(): string {
    for (let i = 0; i < 10_000; i++) {
      const ssrc = liveSsrc(this.#domain, this.#next);
      this.#next = (this.#next % 9999) + 1;
      if (!this.#used.has(ssrc)) {
        this.#used.add(ssrc);
        return ssrc;
      }
    }
    throw new CitysenseError('CS_ERR_GB_SSRC_EXHAUSTED', 'all 9999 live SSRCs are in use', 503);
  }

  /** Returns an SSRC to the pool. */
  release(ssrc: string): void {
    this.#used.delete(ssrc);
  }
}
