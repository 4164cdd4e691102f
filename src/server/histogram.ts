/**
 * A fixed-bucket histogram of durations in seconds and its Prometheus text (exposition format 0.0.4), shared
 * by the node's fsync histogram (`edgekv_fsync_duration_seconds`) and its event-loop delay
 * (`edgekv_event_loop_delay_seconds`, src/server/loop-delay.ts), the AppendEntries round trip per follower
 * (`edgekv_peer_round_trip_seconds`, src/server/append-rtt.ts) and the proposal commit latency
 * (`edgekv_proposal_commit_seconds`). Fixed buckets keep memory constant.
 */

import { escapeLabelValue } from "../api/metrics.ts";

/**
 * Buckets for write-path durations, seconds: fine below 10 ms (one fsync, a loopback round trip), coarse up
 * to a second. Shared by the fsync, proposal commit and AppendEntries round-trip histograms, so that their
 * counts line up bucket for bucket.
 */
export const WRITE_PATH_BUCKETS_S = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

/** Per-bucket (not cumulative) counts: counts[i] in (buckets[i-1], buckets[i]], counts[buckets.length] above the top. */
export interface HistogramCounts {
  /** Upper bounds, seconds, ascending. */
  buckets: number[];
  counts: number[];
  /** Sum of all observations, seconds. */
  sumSeconds: number;
}

/** Counts observations (seconds) into fixed buckets and keeps their sum and the largest one. */
export class BucketHistogram {
  private readonly counts: number[];
  private sumSeconds = 0;
  /** Largest observation so far, seconds (0 before the first). */
  maxSeconds = 0;

  constructor(readonly buckets: number[]) {
    this.counts = new Array<number>(buckets.length + 1).fill(0);
  }

  /** Records one observation of `seconds` (negative counts as 0). */
  observe(seconds: number): void {
    const s = Math.max(0, seconds);
    let i = this.buckets.findIndex((b) => s <= b);
    if (i < 0) i = this.buckets.length;
    this.counts[i]++;
    this.sumSeconds += s;
    if (s > this.maxSeconds) this.maxSeconds = s;
  }

  /** A copy of the counts so far. */
  snapshot(): HistogramCounts {
    return { buckets: this.buckets, counts: [...this.counts], sumSeconds: this.sumSeconds };
  }
}

/** Prometheus lines of histogram `name`: HELP, TYPE, the cumulative `_bucket` lines with `+Inf`, `_sum` and `_count`. */
export function histogramText(name: string, help: string, h: HistogramCounts): string[] {
  return histogramSeriesText(name, help, [{ labels: {}, histogram: h }]);
}

/**
 * Prometheus lines of histogram `name` with one series per label set (e.g. `{peer="n2"}`): HELP and TYPE
 * once, then each series' cumulative `_bucket` lines (its labels before `le`), `+Inf`, `_sum` and `_count`.
 * Label values are escaped (backslash, quote, newline) as the exposition format asks.
 */
export function histogramSeriesText(name: string, help: string, series: Array<{ labels: Record<string, string>; histogram: HistogramCounts }>): string[] {
  const out = [`# HELP ${name} ${help}`, `# TYPE ${name} histogram`];
  for (const { labels, histogram: h } of series) {
    const pairs = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabelValue(v)}"`);
    const withLe = (le: string) => `{${[...pairs, `le="${le}"`].join(",")}}`;
    const plain = pairs.length > 0 ? `{${pairs.join(",")}}` : "";
    let cumulative = 0;
    h.buckets.forEach((b, i) => {
      cumulative += h.counts[i];
      out.push(`${name}_bucket${withLe(String(b))} ${cumulative}`);
    });
    cumulative += h.counts[h.buckets.length];
    out.push(`${name}_bucket${withLe("+Inf")} ${cumulative}`, `${name}_sum${plain} ${h.sumSeconds}`, `${name}_count${plain} ${cumulative}`);
  }
  return out;
}
