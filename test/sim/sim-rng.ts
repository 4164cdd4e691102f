/**
 * The simulator's own seeded PRNG (mulberry32: 32-bit integer arithmetic only, so every runtime draws the
 * same sequence; no floating point on the draw path). Separate streams (network, clients, nemesis, each
 * node's core) are forked from the seed so that changing how often one part draws does not reshuffle the
 * others.
 */

/** A deterministic 32-bit PRNG stream. */
export class SimRng {
  private s: number;

  /** `seed` is any integer; only its low 32 bits matter. */
  constructor(seed: number) {
    this.s = seed >>> 0;
  }

  /** The next unsigned 32-bit integer. */
  nextU32(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** An integer in [0, maxExclusive); throws on maxExclusive < 1. (Modulo bias is irrelevant here.) */
  nextInt(maxExclusive: number): number {
    if (!(maxExclusive >= 1)) throw new Error(`SimRng.nextInt: bad bound ${maxExclusive}`);
    return this.nextU32() % maxExclusive;
  }

  /** An integer in [lo, hi] inclusive. */
  range(lo: number, hi: number): number {
    return lo + this.nextInt(hi - lo + 1);
  }

  /** True with probability perMille / 1000. */
  chance(perMille: number): boolean {
    return perMille > 0 && this.nextInt(1000) < perMille;
  }

  /** A uniformly chosen element; throws on an empty array. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error("SimRng.pick: empty array");
    return items[this.nextInt(items.length)];
  }

  /** A new independent stream derived from this one and a label (stable across runs). */
  fork(label: number): SimRng {
    return new SimRng(this.nextU32() ^ Math.imul(label + 1, 0x9e3779b1));
  }
}
