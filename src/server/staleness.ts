/**
 * The origin of `X-Staleness-Ms` on a stale read (docs/api.md): the last moment at which this node's applied
 * state was known to hold everything a leader had committed. A leader's heartbeat at time t announces its
 * commit index C (HeartbeatMessage.leaderCommit, uncapped); once this node has applied C, its data was current
 * as of t. Hearing a leader alone proves nothing: a node that falls behind hears the leader at once but
 * applies the entries it missed only later (break session B9, docs/nemesis.md). A node that led counts from
 * the last time a quorum was heard while it led (`currentAt`). Wall-clock ms; no clock of its own (times are
 * passed in). t is the heartbeat's SEND time (`heartbeatTimeMs`): heartbeats that waited in the socket while
 * the process was stopped (SIGSTOP) arrive late with an old commit index the node has applied, and counted
 * from their arrival they made 3-s-old data read 1-4 ms (B9).
 */

/**
 * When a heartbeat's `leaderCommit` was current, wall ms: its send time (`HeartbeatMessage.sentAtMs`, stamped
 * by the leader's node), but never later than `arrivalMs` (the leader's clock may run ahead of this node's);
 * the arrival time for a sender that does not stamp.
 */
export function heartbeatTimeMs(arrivalMs: number, sentAtMs: number | undefined): number {
  return sentAtMs === undefined ? arrivalMs : Math.min(sentAtMs, arrivalMs);
}

/** Heartbeats remembered while this node is behind; past it the oldest is dropped (staleness then reads higher, never lower). */
const MAX_PENDING = 64;

/** See the module comment. */
export class StalenessClock {
  private freshAtMs: number | null = null;
  /** Announcements not yet covered by the applied index, oldest first: (leader's commit index, wall ms). */
  private readonly pending: Array<{ commit: number; atMs: number }> = [];

  /**
   * A leader's heartbeat received at `atMs` (wall ms) announced commit index `leaderCommit`; `applied` is this
   * node's applied index now.
   */
  heard(leaderCommit: number, atMs: number, applied: number): void {
    const last = this.pending[this.pending.length - 1];
    if (last !== undefined && last.commit === leaderCommit) last.atMs = atMs;
    else {
      this.pending.push({ commit: leaderCommit, atMs });
      if (this.pending.length > MAX_PENDING) this.pending.shift();
    }
    this.settle(applied);
  }

  /** This node's data was current at `atMs` (wall ms; it led with a quorum then). Never moves the origin back. */
  currentAt(atMs: number): void {
    if (this.freshAtMs === null || atMs > this.freshAtMs) this.freshAtMs = atMs;
  }

  /**
   * Ms between the origin and `nowMs` (wall ms) for a node whose applied index is `applied`; null when no
   * origin is known yet (no leader heard and caught up to since start, and never led).
   */
  stalenessMs(nowMs: number, applied: number): number | null {
    this.settle(applied);
    return this.freshAtMs === null ? null : Math.max(0, nowMs - this.freshAtMs);
  }

  /** Moves the origin to the latest announcement `applied` covers, and forgets every covered one. */
  private settle(applied: number): void {
    let kept = 0;
    for (const p of this.pending) {
      if (p.commit <= applied) this.currentAt(p.atMs);
      else this.pending[kept++] = p;
    }
    this.pending.length = kept;
  }
}
