/**
 * A small deterministic PRNG for the Raft core and the simulator. The core draws its randomized election
 * timeouts from an injected `Rng` (DESIGN.md "The Raft core": no unseeded randomness in src/raft), so a
 * whole run can be replayed from one seed.
 */
import type { Rng } from "./types.ts";

/**
 * Creates a seeded generator (mulberry32: 32-bit state, period 2^32, fine for timeouts and fault choice,
 * not for cryptography). The same `seed` always yields the same sequence on every runtime.
 *
 * @param seed any number; only its low 32 bits are used.
 * @returns an `Rng` whose `nextInt(n)` is uniform-enough in [0, n); throws RangeError when n is not a
 *   positive integer.
 */
export function createRng(seed: number): Rng {
  let state = seed >>> 0;
  const next32 = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
  return {
    nextInt(maxExclusive: number): number {
      if (!Number.isInteger(maxExclusive) || maxExclusive <= 0) {
        throw new RangeError(`nextInt needs a positive integer bound, got ${maxExclusive}`);
      }
      // Scale a 32-bit draw into the range; the bias is below 2^-20 for the bounds used here (< 4096).
      return Math.floor((next32() / 0x1_0000_0000) * maxExclusive);
    },
  };
}
