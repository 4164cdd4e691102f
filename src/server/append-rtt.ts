/**
 * The leader's AppendEntries round trip per follower (`edgekv_peer_round_trip_seconds`, etcd's
 * `etcd_network_peer_round_trip_time_seconds` measured on the replication stream itself): the time from
 * handing an AppendEntries that carries entries to the transport until the follower's successful reply
 * whose match index covers its last entry. It is what a write waits for beyond the leader's own fsync:
 * the way to the follower, the follower's queue, persist and fsync, and the way back (issue #6: at put@64
 * the tail of this round trip, not the disk, set the write p99; docs/bench.md "Where the put@64 tail
 * comes from").
 *
 * No clock of its own: callers pass `nowMs` (any monotonic ms clock, the node uses performance.now()).
 * Memory is bounded: at most `maxPendingPerPeer` sends are remembered per follower (oldest dropped).
 */
import { BucketHistogram, type HistogramCounts, WRITE_PATH_BUCKETS_S } from "./histogram.ts";

/** AppendEntries sends remembered per follower, at most (pipelining keeps far fewer in flight). */
const MAX_PENDING_PER_PEER = 1024;

/** Matches each follower's success replies to the AppendEntries they answer and counts the round trips. */
export class AppendRoundTrips {
  /** Per follower: [last entry index, sent at ms] in send order. */
  private readonly pending = new Map<string, Array<[number, number]>>();
  private readonly histograms = new Map<string, BucketHistogram>();

  constructor(private readonly maxPendingPerPeer = MAX_PENDING_PER_PEER) {}

  /** An AppendEntries to `peer` whose last entry is at `lastIndex` left at `nowMs` (ms). */
  sent(peer: string, lastIndex: number, nowMs: number): void {
    let list = this.pending.get(peer);
    if (!list) this.pending.set(peer, (list = []));
    list.push([lastIndex, nowMs]);
    if (list.length > this.maxPendingPerPeer) list.shift();
  }

  /**
   * `peer` answered with success and `matchIndex` at `nowMs` (ms): every send whose last entry it covers is
   * counted (a reply may cover several pipelined sends) and forgotten.
   */
  acked(peer: string, matchIndex: number, nowMs: number): void {
    const list = this.pending.get(peer);
    if (!list) return;
    let n = 0;
    while (n < list.length && list[n][0] <= matchIndex) n++;
    if (n === 0) return;
    let h = this.histograms.get(peer);
    if (!h) this.histograms.set(peer, (h = new BucketHistogram(WRITE_PATH_BUCKETS_S)));
    for (let i = 0; i < n; i++) h.observe((nowMs - list[i][1]) / 1000);
    list.splice(0, n);
  }

  /**
   * Forgets the sends to `peer`, or to every follower when omitted: on a rejection (the leader backs off and
   * resends), an unreachable follower, and when this node stops leading. Their replies, if any come, count
   * nothing. The histograms are kept.
   */
  forget(peer?: string): void {
    if (peer === undefined) this.pending.clear();
    else this.pending.delete(peer);
  }

  /**
   * Drops everything about followers outside `members` (the configuration's members): their histograms
   * leave /metrics once they are removed.
   */
  retain(members: ReadonlySet<string>): void {
    for (const id of [...this.histograms.keys()]) if (!members.has(id)) this.histograms.delete(id);
    for (const id of [...this.pending.keys()]) if (!members.has(id)) this.pending.delete(id);
  }

  /** Sends remembered for `peer` (tests and bounds). */
  pendingCount(peer: string): number {
    return this.pending.get(peer)?.length ?? 0;
  }

  /** A copy of each follower's histogram so far, by follower id, sorted. */
  snapshot(): Array<{ peer: string; histogram: HistogramCounts }> {
    return [...this.histograms].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([peer, h]) => ({ peer, histogram: h.snapshot() }));
  }
}
