/**
 * A bounded wait that leaves no timer behind. `Promise.race([p, sleep(ms)])` keeps its `ms` timer pending
 * after `p` wins, and a pending timer keeps a test file's process alive: `node --test` waits for that
 * process to exit, so a 60 s bound on a child's exit that took 1 s held entry.test.ts open ~55 s more on
 * every Node run (2026-11-30). Dependency-free so any test or harness file can import it.
 */

/**
 * Resolves with `p`'s value, or with `onTimeout` when `p` has not settled within `ms` (ms); rejects when `p`
 * rejects first. The timer is cleared as soon as either side settles.
 */
export function within<T, U>(p: Promise<T>, ms: number, onTimeout: U): Promise<T | U> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<U>((resolve) => {
    timer = setTimeout(() => resolve(onTimeout), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
