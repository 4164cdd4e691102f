/**
 * Event-loop delay of a node: how late a timer set for every `intervalMs` fires. Everything a node does (its
 * Ready loop, SQLite calls, HTTP requests, peer frames) runs on one event loop, so a synchronous stretch of
 * work delays every request in flight by its length; put tails on a busy 2-core machine come from such
 * stretches (docs/bench.md). This is the figure Node's `perf_hooks.monitorEventLoopDelay` gives, measured
 * with a plain timer so that it works the same on Node, Bun and Deno.
 *
 * Exposed as the Prometheus histogram `edgekv_event_loop_delay_seconds` (src/server/cluster-view.ts).
 */

/** Histogram bucket upper bounds, seconds: from a few ms (timer jitter) to a second (a stall). */
export const LOOP_DELAY_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

/** What `LoopDelayMonitor.snapshot` returns: per-bucket (not cumulative) counts, the last one past the top bound. */
export interface LoopDelayHistogram {
  buckets: number[];
  /** counts[i]: samples in (buckets[i-1], buckets[i]]; counts[buckets.length]: above the top bound. */
  counts: number[];
  /** Sum of all delays, seconds. */
  sumSeconds: number;
  /** Largest delay seen, seconds. */
  maxSeconds: number;
}

/**
 * Samples the delay with a chain of timers `intervalMs` apart (default 20 ms: 50 wakeups a second). Each
 * sample is how much later than due the timer ran, in ms (never negative). `now` is a monotonic clock in ms.
 */
export class LoopDelayMonitor {
  private readonly counts = new Array<number>(LOOP_DELAY_BUCKETS_S.length + 1).fill(0);
  private sumSeconds = 0;
  private maxSeconds = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private due = 0;

  constructor(
    private readonly now: () => number = () => performance.now(),
    private readonly intervalMs = 20,
  ) {}

  /** Starts sampling; idempotent. */
  start(): void {
    if (this.timer !== undefined) return;
    this.arm();
  }

  /** Stops sampling; idempotent. The counts stay readable. */
  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Records one delay of `ms` milliseconds (the timer calls this; tests may too). */
  record(ms: number): void {
    const s = Math.max(0, ms) / 1000;
    let i = LOOP_DELAY_BUCKETS_S.findIndex((b) => s <= b);
    if (i < 0) i = LOOP_DELAY_BUCKETS_S.length;
    this.counts[i]++;
    this.sumSeconds += s;
    if (s > this.maxSeconds) this.maxSeconds = s;
  }

  /** A copy of the histogram so far. */
  snapshot(): LoopDelayHistogram {
    return { buckets: LOOP_DELAY_BUCKETS_S, counts: [...this.counts], sumSeconds: this.sumSeconds, maxSeconds: this.maxSeconds };
  }

  private arm(): void {
    this.due = this.now() + this.intervalMs;
    this.timer = setTimeout(() => {
      this.record(this.now() - this.due);
      if (this.timer !== undefined) this.arm();
    }, this.intervalMs);
  }
}
