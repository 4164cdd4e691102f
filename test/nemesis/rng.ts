/**
 * The nemesis harness's seeded PRNG (mulberry32): the fault schedule and the workload's choices come from
 * one replay seed. Only the schedule is reproducible exactly; real processes add their own timing.
 */

/** A small seeded PRNG; `next()` is uniform in [0, 1). */
export class Rng {
  private state: number;
  constructor(readonly seed: number) {
    this.state = seed >>> 0 || 0x9e3779b9;
  }
  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  /** Integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  /** One element of a non-empty list. */
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  /** A random subset of exactly `k` elements. */
  sample<T>(xs: readonly T[], k: number): T[] {
    const copy = [...xs];
    for (let i = copy.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [copy[i], copy[j]] = [copy[j], copy[i]];
    }
    return copy.slice(0, k);
  }
  /** An independent stream derived from this seed and `salt`. */
  fork(salt: number): Rng {
    return new Rng((Math.imul(this.seed ^ 0x85ebca6b, 0x9e3779b1) + Math.imul(salt, 0xc2b2ae35)) >>> 0);
  }
}
