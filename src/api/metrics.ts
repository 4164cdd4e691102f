/**
 * Request metrics of the client API in Prometheus text exposition format 0.0.4: a latency histogram per
 * (method, route) and a request counter per (method, route, status). Fixed buckets keep memory bounded:
 * routes are hono route patterns (`/v1/kv/*`), never raw paths, so the label set is finite.
 */

/** Histogram bucket upper bounds in seconds (covers the DESIGN.md alert thresholds 10 ms / 100 ms / 500 ms). */
export const LATENCY_BUCKETS_SEC = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

interface Histogram {
  counts: number[];
  sumSec: number;
  count: number;
}

/** Escapes a Prometheus label value (backslash, quote, newline); also used by src/server/histogram.ts. */
export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/** Collects per-route request latencies and status counts; `render()` gives the exposition text. */
export class RequestMetrics {
  private readonly histograms = new Map<string, Histogram>();
  private readonly totals = new Map<string, number>();

  /** Records one request of `durationMs` milliseconds that answered `status`. */
  observe(method: string, route: string, status: number, durationMs: number): void {
    const hk = `${method}\u0000${route}`;
    let h = this.histograms.get(hk);
    if (!h) {
      h = { counts: new Array(LATENCY_BUCKETS_SEC.length).fill(0), sumSec: 0, count: 0 };
      this.histograms.set(hk, h);
    }
    const sec = Math.max(0, durationMs) / 1000;
    for (let i = 0; i < LATENCY_BUCKETS_SEC.length; i++) if (sec <= LATENCY_BUCKETS_SEC[i]) h.counts[i]++;
    h.sumSec += sec;
    h.count++;
    const tk = `${hk}\u0000${status}`;
    this.totals.set(tk, (this.totals.get(tk) ?? 0) + 1);
  }

  /** The metrics as Prometheus text (cumulative buckets, `+Inf`, `_sum`, `_count`). */
  render(): string {
    const lines: string[] = [
      "# HELP edgekv_http_request_duration_seconds Client API request latency by route.",
      "# TYPE edgekv_http_request_duration_seconds histogram",
    ];
    for (const [hk, h] of [...this.histograms].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const [method, route] = hk.split("\u0000");
      const l = `method="${escapeLabelValue(method)}",route="${escapeLabelValue(route)}"`;
      LATENCY_BUCKETS_SEC.forEach((le, i) => lines.push(`edgekv_http_request_duration_seconds_bucket{${l},le="${le}"} ${h.counts[i]}`));
      lines.push(`edgekv_http_request_duration_seconds_bucket{${l},le="+Inf"} ${h.count}`);
      lines.push(`edgekv_http_request_duration_seconds_sum{${l}} ${h.sumSec}`);
      lines.push(`edgekv_http_request_duration_seconds_count{${l}} ${h.count}`);
    }
    lines.push("# HELP edgekv_http_requests_total Client API requests by route and status.", "# TYPE edgekv_http_requests_total counter");
    for (const [tk, n] of [...this.totals].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const [method, route, status] = tk.split("\u0000");
      lines.push(`edgekv_http_requests_total{method="${escapeLabelValue(method)}",route="${escapeLabelValue(route)}",status="${status}"} ${n}`);
    }
    return lines.join("\n") + "\n";
  }
}
