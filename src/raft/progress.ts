/**
 * The leader's view of one follower's replication (etcd raft tracker/progress.go, restated): match index,
 * next index and a mode: `probe` (one AppendEntries at a time until the follower's position is known),
 * `replicate` (pipelined, at most `maxInflight` in flight), `snapshot` (waiting for InstallSnapshot).
 * Invariant: matchIndex < nextIndex.
 */
import type { ProgressState, ProgressStatus } from "./types.ts";

/** Replication state of one peer, owned by the leader. */
export class Progress {
  matchIndex = 0;
  nextIndex: number;
  state: ProgressState = "probe";
  /** Last index of each AppendEntries in flight, oldest first (replicate mode only). */
  inflights: number[] = [];
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
  ) {
    this.nextIndex = Math.max(1, nextIndex);
  }

  private reset(state: ProgressState): void {
    this.state = state;
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.inflights = [];
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

  /** Records an AppendEntries whose last entry is `lastIndex` (or an empty probe when `count` is 0). */
  sentEntries(lastIndex: number, count: number): void {
    if (this.state === "replicate") {
      if (count > 0) {
        this.nextIndex = lastIndex + 1;
        this.inflights.push(lastIndex);
      }
    } else if (this.state === "probe") {
      this.probeSent = true;
    }
  }

  /** Frees the in-flight slots of every AppendEntries whose last index is <= `index`. */
  freeInflightsTo(index: number): void {
    let n = 0;
    while (n < this.inflights.length && this.inflights[n]! <= index) n++;
    if (n > 0) this.inflights = this.inflights.slice(n);
  }

  /** True when nothing more may be sent now (probe awaiting an answer, window full, or snapshot pending). */
  isPaused(): boolean {
    switch (this.state) {
      case "probe":
        return this.probeSent;
      case "replicate":
        return this.inflights.length >= this.maxInflight;
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
      recentActive: this.recentActive,
      isLearner: this.isLearner,
    };
  }
}
