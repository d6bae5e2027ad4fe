/**
 * Deterministic pseudo-random numbers for simulators: mulberry32 (Tommy Ettinger's
 * 32-bit generator), small and fast, so one seed replays the same pole exactly.
 * Not for cryptography.
 */
export class SeededRandom {
  #state: number;
  #spareGaussian: number | undefined;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Uniform in [min, max). */
  uniform(min: number, max: number): number {
    return min + (max - min) * this.next();
  }

  /** Integer uniform in [min, max], both inclusive. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** Standard normal (Box-Muller, the spare value cached). */
  gaussian(): number {
    const spare = this.#spareGaussian;
    if (spare !== undefined) {
      this.#spareGaussian = undefined;
      return spare;
    }
    const u = 1 - this.next(); // (0, 1] so the log is finite
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.#spareGaussian = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** One of `items`, uniformly. */
  pick<T>(items: readonly [T, ...T[]]): T {
    return items[Math.floor(this.next() * items.length)] ?? items[0];
  }

  /** One of `items`, with probability proportional to its `weight`. */
  pickWeighted<T extends { weight: number }>(items: readonly [T, ...T[]]): T {
    let roll = this.next() * items.reduce((sum, item) => sum + item.weight, 0);
    for (const item of items) {
      roll -= item.weight;
      if (roll < 0) return item;
    }
    return items[items.length - 1] ?? items[0];
  }
}

/**
 * One exact step of an Ornstein-Uhlenbeck process (mean-reverting random walk): exact
 * for any `dtMs`, so ticks of 10 ms and of 1 h give the same statistics.
 */
export function ouStep(
  x: number,
  mean: number,
  sigma: number,
  tauMs: number,
  dtMs: number,
  random: SeededRandom,
): number {
  const decay = Math.exp(-dtMs / tauMs);
  return mean + (x - mean) * decay + sigma * Math.sqrt(1 - decay * decay) * random.gaussian();
}
