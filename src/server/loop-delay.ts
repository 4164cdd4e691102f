/**
 * Event-loop delay of a node: how late a timer set for every `intervalMs` fires. Everything a node does (its
 * Ready loop, SQLite calls, HTTP requests, peer frames) runs on one event loop, so a synchronous stretch of
 * work delays every request in flight by its length; put tails on a busy 2-core machine come from such
 * stretches (docs/bench.md). This is the figure Node's `perf_hooks.monitorEventLoopDelay` gives, measured
 * with a plain timer so that it works the same on Node, Bun and Deno.
 *
 * Exposed as the Prometheus histogram `edgekv_event_loop_delay_seconds` (src/server/cluster-view.ts).
 */
import { BucketHistogram, type HistogramCounts } from "./histogram.ts";

/** Histogram bucket upper bounds, seconds: from a few ms (timer jitter) to a second (a stall). */
export const LOOP_DELAY_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

/** What `LoopDelayMonitor.snapshot` returns: the delays' histogram and the largest delay, seconds. */
export interface LoopDelayHistogram extends HistogramCounts {
  maxSeconds: number;
}

/**
 * Samples the delay with a chain of timers `intervalMs` apart (default 20 ms: 50 wakeups a second). Each
 * sample is how much later than due the timer ran, in ms (never negative). `now` is a monotonic clock in ms.
 */
export class LoopDelayMonitor {
  private readonly delays = new BucketHistogram(LOOP_DELAY_BUCKETS_S);
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
    this.delays.observe(ms / 1000);
  }

  /** A copy of the histogram so far. */
  snapshot(): LoopDelayHistogram {
    return { ...this.delays.snapshot(), maxSeconds: this.delays.maxSeconds };
  }

  private arm(): void {
    this.due = this.now() + this.intervalMs;
    this.timer = setTimeout(() => {
      this.record(this.now() - this.due);
      if (this.timer !== undefined) this.arm();
    }, this.intervalMs);
  }
}
