/**
 * A fixed-bucket histogram of durations in seconds and its Prometheus text (exposition format 0.0.4), shared
 * by the node's fsync histogram (`edgekv_fsync_duration_seconds`) and its event-loop delay
 * (`edgekv_event_loop_delay_seconds`, src/server/loop-delay.ts). Fixed buckets keep memory constant.
 */

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
  const out = [`# HELP ${name} ${help}`, `# TYPE ${name} histogram`];
  let cumulative = 0;
  h.buckets.forEach((b, i) => {
    cumulative += h.counts[i];
    out.push(`${name}_bucket{le="${b}"} ${cumulative}`);
  });
  cumulative += h.counts[h.buckets.length];
  out.push(`${name}_bucket{le="+Inf"} ${cumulative}`, `${name}_sum ${h.sumSeconds}`, `${name}_count ${cumulative}`);
  return out;
}
