/**
 * The leader's view of one follower's replication (etcd raft tracker/progress.go, restated): match index,
 * next index and a mode: `probe` (one AppendEntries at a time until the follower's position is known),
 * `replicate` (pipelined, at most `maxInflight` AppendEntries and `maxInflightBytes` entry data bytes in
 * flight), `snapshot` (waiting for InstallSnapshot).
 * Invariant: matchIndex < nextIndex.
 *
 * Why a byte bound as well as a count (etcd raft v3.6 Config.MaxInflightBytes, tracker/inflights.go): a
 * follower that stops answering (SIGSTOP, a dead link) keeps every in-flight AppendEntries alive in the
 * leader's send path, and with only a count the leader's memory per such follower is up to
 * maxInflight x maxPayloadBytes (256 x 4 MiB); the byte bound makes it maxInflightBytes plus one message.
 */
import type { ProgressState, ProgressStatus } from "./types.ts";

/** Replication state of one peer, owned by the leader. */
export class Progress {
  matchIndex = 0;
  nextIndex: number;
  state: ProgressState = "probe";
  /** Each AppendEntries in flight, oldest first (replicate mode only): its last index and entry data bytes. */
  private inflights: Array<{ lastIndex: number; dataBytes: number }> = [];
  /** Sum of the in-flight `dataBytes`, in bytes. */
  inflightBytes = 0;
  /** Probe mode: one AppendEntries was sent and no answer came yet. */
  probeSent = false;
  /** Snapshot mode: index of the snapshot being sent. */
  pendingSnapshot = 0;
  /** Heard from since the last CheckQuorum round. */
  recentActive = false;

  constructor(
    nextIndex: number,
    public isLearner: boolean,
    private readonly maxInflight: number,
    /** Entry data bytes in flight that pause sending (0 = no byte bound), see the file comment. */
    private readonly maxInflightBytes = 0,
  ) {
    this.nextIndex = Math.max(1, nextIndex);
  }

  private reset(state: ProgressState): void {
    this.state = state;
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.inflights = [];
    this.inflightBytes = 0;
  }

  /** Back to probing from just after the match index (after a rejection, unreachability or a snapshot). */
  becomeProbe(): void {
    if (this.state === "snapshot") {
      const pending = this.pendingSnapshot;
      this.reset("probe");
      this.nextIndex = Math.max(this.matchIndex + 1, pending + 1);
    } else {
      this.reset("probe");
      this.nextIndex = this.matchIndex + 1;
    }
  }

  /** The follower's position is known: pipeline from matchIndex + 1. */
  becomeReplicate(): void {
    this.reset("replicate");
    this.nextIndex = this.matchIndex + 1;
  }

  /** An InstallSnapshot of `snapshotIndex` is being sent; nothing else goes out until it is answered. */
  becomeSnapshot(snapshotIndex: number): void {
    this.reset("snapshot");
    this.pendingSnapshot = snapshotIndex;
  }

  /** A success reply matched `index`; returns true when that moved the match index forward. */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (this.matchIndex < index) {
      this.matchIndex = index;
      updated = true;
      this.probeSent = false;
    }
    this.nextIndex = Math.max(this.nextIndex, index + 1);
    return updated;
  }

  /**
   * A rejection of `rejectIndex` with the hint that the logs may agree up to `hintIndex`. Returns false for
   * a stale rejection (the reply to an older AppendEntries), else moves nextIndex back and returns true.
   */
  maybeDecrTo(rejectIndex: number, hintIndex: number): boolean {
    if (this.state === "replicate") {
      if (rejectIndex <= this.matchIndex) return false;
      this.nextIndex = this.matchIndex + 1;
      return true;
    }
    if (this.nextIndex - 1 !== rejectIndex) return false;
    this.nextIndex = Math.max(Math.min(rejectIndex, hintIndex + 1), this.matchIndex + 1, 1);
    this.probeSent = false;
    return true;
  }

  /**
   * Records an AppendEntries whose last entry is `lastIndex` (or an empty probe when `count` is 0) and
   * whose entries carry `dataBytes` bytes of data (the sum of `entry.data.byteLength`, as etcd's payload size).
   */
  sentEntries(lastIndex: number, count: number, dataBytes = 0): void {
    if (this.state === "replicate") {
      if (count > 0) {
        this.nextIndex = lastIndex + 1;
        this.inflights.push({ lastIndex, dataBytes });
        this.inflightBytes += dataBytes;
      }
    } else if (this.state === "probe") {
      this.probeSent = true;
    }
  }

  /** Frees the in-flight slots of every AppendEntries whose last index is <= `index`. */
  freeInflightsTo(index: number): void {
    let n = 0;
    while (n < this.inflights.length && this.inflights[n]!.lastIndex <= index) n++;
    this.freeOldest(n);
  }

  /**
   * Frees the `n` oldest in-flight slots and their bytes. The heartbeat rule frees one when the window is
   * full, so that a lost AppendEntries cannot hold its slot forever (test/sim/FINDINGS.md #1).
   */
  freeOldest(n: number): void {
    if (n <= 0) return;
    for (const f of this.inflights.slice(0, n)) this.inflightBytes -= f.dataBytes;
    this.inflights = this.inflights.slice(n);
  }

  /** True when nothing more may be sent now (probe awaiting an answer, window full, or snapshot pending). */
  isPaused(): boolean {
    switch (this.state) {
      case "probe":
        return this.probeSent;
      case "replicate":
        // Full by count, or by bytes once anything is in flight (a single message larger than the bound
        // still goes out alone, as etcd's inflights allow, so progress never stalls).
        return this.inflights.length >= this.maxInflight || (this.maxInflightBytes > 0 && this.inflightBytes >= this.maxInflightBytes);
      case "snapshot":
        return true;
    }
  }

  /** A plain copy for `RaftStatus`. */
  status(): ProgressStatus {
    return {
      matchIndex: this.matchIndex,
      nextIndex: this.nextIndex,
      state: this.state,
      inflight: this.inflights.length,
      inflightBytes: this.inflightBytes,
      recentActive: this.recentActive,
      isLearner: this.isLearner,
    };
  }
}
