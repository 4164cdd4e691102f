/**
 * The core's view of the log: what the driver has made durable (`RaftStorage`) plus the unstable tail
 * (entries and at most one snapshot handed out in a Ready but not yet confirmed by `advance()`), and the
 * commit and applied indexes. Invariant (openraft log_pointers, types.ts):
 *   snapshot.index <= applied <= commit <= lastIndex
 */
import {
  CompactedError,
  RaftInvariantError,
  UnavailableError,
  type Entry,
  type RaftStorage,
  type Snapshot,
} from "./types.ts";

/** Throws RaftInvariantError with `message` unless `cond` holds. */
export function invariant(cond: boolean, message: string): asserts cond {
  if (!cond) throw new RaftInvariantError(message);
}

/** Durable log + unstable tail. Reads above the unstable offset come from memory, below it from storage. */
export class RaftLog {
  /** Snapshot received by InstallSnapshot, not yet persisted; while set, storage is ignored entirely. */
  unstableSnapshot: Snapshot | undefined;
  /** Entries not yet persisted; `unstable[0].index === offset`. */
  unstable: Entry[] = [];
  offset: number;
  /**
   * Last index handed out in a Ready for persisting (>= offset - 1): entries above it go in the next
   * Ready. Lowered when an append replaces handed entries (they must be written again) or a snapshot
   * replaces the log (etcd raft's unstable.offsetInProgress).
   */
  handedTo: number;
  committed: number;
  applied: number;
  /** Last committed index handed out in a Ready for applying (>= applied); see RaftNode.applyFrom. */
  applying: number;

  constructor(
    readonly storage: RaftStorage,
    committed: number,
    applied: number,
  ) {
    this.offset = storage.lastIndex() + 1;
    this.handedTo = this.offset - 1;
    this.committed = committed;
    const snapIndex = storage.firstIndex() - 1;
    // A restarted state machine has at least the snapshot it was restored from.
    this.applied = Math.max(applied, snapIndex);
    invariant(this.committed <= this.lastIndex(), `commit ${committed} past last index ${this.lastIndex()}`);
    if (this.committed < this.applied) this.committed = this.applied;
    this.applying = this.applied;
  }

  firstIndex(): number {
    return this.unstableSnapshot ? this.unstableSnapshot.meta.index + 1 : this.storage.firstIndex();
  }

  lastIndex(): number {
    if (this.unstable.length > 0) return this.offset + this.unstable.length - 1;
    if (this.unstableSnapshot) return this.unstableSnapshot.meta.index;
    return this.storage.lastIndex();
  }

  /** Index of the snapshot the log starts after (0 for a log that was never compacted). */
  snapshotIndex(): number {
    return this.firstIndex() - 1;
  }

  /** Term of entry `index`; throws CompactedError below firstIndex-1 and UnavailableError past the last. */
  term(index: number): number {
    if (index === 0) return 0;
    if (index > this.lastIndex()) throw new UnavailableError(index);
    if (index >= this.offset && this.unstable.length > 0) return this.unstable[index - this.offset]!.term;
    const snap = this.unstableSnapshot;
    if (snap) {
      if (index === snap.meta.index) return snap.meta.term;
      throw new CompactedError(index);
    }
    return this.storage.term(index);
  }

  /** Term of `index`, or -1 when it is compacted or not present (never throws for those). */
  termOrNone(index: number): number {
    try {
      return this.term(index);
    } catch (e) {
      if (e instanceof CompactedError || e instanceof UnavailableError) return -1;
      throw e;
    }
  }

  lastTerm(): number {
    return this.term(this.lastIndex());
  }

  /** True when entry `index` exists with term `term` (Raft paper §5.3 log matching). */
  matchTerm(index: number, term: number): boolean {
    return this.termOrNone(index) === term;
  }

  /** Raft paper §5.4.1: a candidate whose log ends at (index, term) is at least as up to date as ours. */
  isUpToDate(index: number, term: number): boolean {
    const lt = this.lastTerm();
    return term > lt || (term === lt && index >= this.lastIndex());
  }

  /**
   * Entries in [lo, hi), at least one when lo < hi, stopping before `maxBytes` of data. Throws
   * CompactedError when lo was compacted.
   */
  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    if (lo >= hi) return [];
    if (lo < this.firstIndex()) throw new CompactedError(lo);
    invariant(hi <= this.lastIndex() + 1, `entries [${lo}, ${hi}) past last index ${this.lastIndex()}`);
    let out: Entry[] = [];
    if (lo < this.offset) {
      out = this.storage.entries(lo, Math.min(hi, this.offset), maxBytes);
      if (out.length < Math.min(hi, this.offset) - lo) return out;
    }
    let bytes = out.reduce((n, e) => n + e.data.byteLength, 0);
    for (let i = Math.max(lo, this.offset); i < hi; i++) {
      const e = this.unstable[i - this.offset]!;
      bytes += e.data.byteLength;
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  /**
   * Largest index <= `index` whose term is <= `term` (etcd findConflictByTerm): where the logs may still
   * agree when a follower rejects AppendEntries. Returns the snapshot index when it reaches compacted space.
   */
  findConflictByTerm(index: number, term: number): number {
    let i = Math.min(index, this.lastIndex());
    for (; i > this.snapshotIndex(); i--) {
      if (this.term(i) <= term) return i;
    }
    return i;
  }

  /**
   * Appends `entries` (consecutive), replacing any entries from entries[0].index on. Throws
   * RaftInvariantError when that would truncate a committed entry or leave a hole.
   */
  append(entries: Entry[]): void {
    if (entries.length === 0) return;
    const after = entries[0]!.index;
    invariant(after > this.committed, `truncating committed entry ${after} (commit ${this.committed})`);
    invariant(after <= this.lastIndex() + 1, `append at ${after} leaves a hole after ${this.lastIndex()}`);
    if (after === this.offset + this.unstable.length && this.unstable.length > 0) {
      for (const e of entries) this.unstable.push(e); // in place: many proposals per Ready stay linear
    } else if (after <= this.offset) {
      this.offset = after;
      this.unstable = entries.slice();
    } else {
      this.unstable = this.unstable.slice(0, after - this.offset).concat(entries);
    }
    // Handed-out entries from `after` on were replaced: the next Ready writes them again (the driver's
    // storage deletes stored entries from entries[0].index on, types.ts Ready step 2).
    if (this.handedTo >= after) this.handedTo = after - 1;
  }

  /** Unstable entries not yet handed out in a Ready (all of them when nothing is in flight). */
  unhanded(): Entry[] {
    const from = Math.max(0, this.handedTo + 1 - this.offset);
    return from === 0 ? this.unstable.slice() : this.unstable.slice(from);
  }

  /** True when some unstable entry was not handed out yet. */
  hasUnhanded(): boolean {
    return this.offset + this.unstable.length - 1 > this.handedTo;
  }

  /** Raises the commit index to `index` (never lowers it). Throws RaftInvariantError past the last index. */
  commitTo(index: number): boolean {
    if (index <= this.committed) return false;
    invariant(index <= this.lastIndex(), `commit ${index} past last index ${this.lastIndex()}`);
    this.committed = index;
    return true;
  }

  /** Replaces the whole log with `snapshot` (InstallSnapshot); commit and (after apply) applied jump to it. */
  restore(snapshot: Snapshot): void {
    this.unstableSnapshot = snapshot;
    this.unstable = [];
    this.offset = snapshot.meta.index + 1;
    this.handedTo = snapshot.meta.index;
    this.committed = snapshot.meta.index;
  }

  /** The driver persisted the unstable entries up to (index, term): drop them from memory. */
  stableTo(index: number, term: number): void {
    if (index < this.offset || this.unstable.length === 0) return;
    if (index > this.lastIndex() || this.termOrNone(index) !== term) return;
    this.unstable = this.unstable.slice(index + 1 - this.offset);
    this.offset = index + 1;
    if (this.handedTo < index) this.handedTo = index;
  }

  /** The driver persisted the unstable snapshot at `index`. */
  stableSnapshotTo(index: number): void {
    if (this.unstableSnapshot && this.unstableSnapshot.meta.index === index) this.unstableSnapshot = undefined;
  }

  /** The state machine applied up to `index`. */
  appliedTo(index: number): void {
    invariant(index <= this.committed, `applied ${index} past commit ${this.committed}`);
    if (index > this.applied) this.applied = index;
    if (index > this.applying) this.applying = index;
  }
}
