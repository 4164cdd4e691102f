/**
 * An in-memory `RaftStorage` for unit tests and the deterministic simulator. It follows the storage duties
 * written on `RaftStorage` (types.ts; shape of etcd raft's MemoryStorage): no holes, `term(firstIndex-1)`
 * known, `CompactedError` below the first index and `UnavailableError` past the last.
 */
import {
  CompactedError,
  RaftInvariantError,
  UnavailableError,
  type ConfState,
  type Entry,
  type HardState,
  type RaftStorage,
  type Snapshot,
} from "./types.ts";
import { emptyConfState } from "./confchange.ts";

function copyConfState(cs: ConfState): ConfState {
  return { voters: [...cs.voters], votersOutgoing: [...cs.votersOutgoing], learners: [...cs.learners] };
}

/**
 * Log, hard state and latest snapshot held in memory. The stored log is `[firstIndex, lastIndex]`; the term
 * of `firstIndex - 1` is kept as `baseTerm` so log matching works right after compaction.
 * `initialState().confState` is the membership as of `firstIndex - 1` (the snapshot's, or the bootstrap
 * one): the core replays conf entries stored after it.
 */
export class MemoryStorage implements RaftStorage {
  private hardState: HardState;
  private snap: Snapshot;
  /** Index and term of the entry just before the first stored one. */
  private baseIndex = 0;
  private baseTerm = 0;
  private ents: Entry[] = [];

  /** @param init bootstrap hard state and membership (a brand-new cluster's voters); both default to empty. */
  constructor(init?: { hardState?: HardState; confState?: ConfState }) {
    this.hardState = { ...(init?.hardState ?? { term: 0, vote: "", commit: 0 }) };
    this.snap = {
      meta: { index: 0, term: 0, confState: copyConfState(init?.confState ?? emptyConfState()) },
      data: new Uint8Array(0),
    };
  }

  /** The durable hard state and the membership as of `firstIndex() - 1`. */
  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: { ...this.hardState }, confState: copyConfState(this.snap.meta.confState) };
  }

  /** Entries in [lo, hi), at least one when lo < hi, stopping before the data size passes `maxBytes`. */
  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    if (lo <= this.baseIndex) throw new CompactedError(lo);
    if (hi > this.lastIndex() + 1) throw new UnavailableError(hi - 1);
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = lo; i < hi; i++) {
      const e = this.ents[i - this.baseIndex - 1]!;
      bytes += e.data.byteLength;
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  /** Term of entry `index`; `CompactedError` below `firstIndex() - 1`, `UnavailableError` past the last. */
  term(index: number): number {
    if (index < this.baseIndex) throw new CompactedError(index);
    if (index === this.baseIndex) return this.baseTerm;
    if (index > this.lastIndex()) throw new UnavailableError(index);
    return this.ents[index - this.baseIndex - 1]!.term;
  }

  firstIndex(): number {
    return this.baseIndex + 1;
  }

  lastIndex(): number {
    return this.baseIndex + this.ents.length;
  }

  /** The latest snapshot (index 0 with the bootstrap membership before any was made). */
  snapshot(): Snapshot {
    return this.snap;
  }

  /**
   * Appends `entries` (consecutive), first deleting stored entries with index >= entries[0].index. Entries
   * at or below the compaction point are skipped. Throws RaftInvariantError on a gap.
   */
  append(entries: Entry[]): void {
    if (entries.length === 0) return;
    const live = entries.filter((e) => e.index > this.baseIndex);
    if (live.length === 0) return;
    const first = live[0]!.index;
    if (first > this.lastIndex() + 1) {
      throw new RaftInvariantError(`append leaves a hole: last ${this.lastIndex()}, appending from ${first}`);
    }
    this.ents = this.ents.slice(0, first - this.baseIndex - 1).concat(live);
  }

  setHardState(hs: HardState): void {
    this.hardState = { ...hs };
  }

  /**
   * Replaces the whole log with `snapshot` (InstallSnapshot on a follower): afterwards the log is empty
   * and starts after `snapshot.meta.index`. Throws RaftInvariantError if it is older than the current one.
   */
  applySnapshot(snapshot: Snapshot): void {
    if (snapshot.meta.index < this.snap.meta.index) {
      throw new RaftInvariantError(`snapshot ${snapshot.meta.index} is older than ${this.snap.meta.index}`);
    }
    this.snap = { meta: { ...snapshot.meta, confState: copyConfState(snapshot.meta.confState) }, data: snapshot.data };
    this.baseIndex = snapshot.meta.index;
    this.baseTerm = snapshot.meta.term;
    this.ents = [];
  }

  /**
   * Records a snapshot of the state machine at `index` (the caller's applied index) with membership
   * `confState`; the log is kept (call `compact` to drop it). Throws RaftInvariantError when `index` is not
   * stored or older than the current snapshot.
   */
  createSnapshot(index: number, confState: ConfState, data: Uint8Array): Snapshot {
    if (index < this.snap.meta.index) throw new RaftInvariantError(`snapshot ${index} older than ${this.snap.meta.index}`);
    if (index > this.lastIndex()) throw new RaftInvariantError(`snapshot ${index} past last index ${this.lastIndex()}`);
    this.snap = { meta: { index, term: this.term(index), confState: copyConfState(confState) }, data };
    return this.snap;
  }

  /** Drops entries <= `index`. Throws RaftInvariantError when `index` is past the latest snapshot. */
  compact(index: number): void {
    if (index <= this.baseIndex) return;
    if (index > this.snap.meta.index) {
      throw new RaftInvariantError(`compact ${index} past snapshot index ${this.snap.meta.index}`);
    }
    this.baseTerm = this.term(index);
    this.ents = this.ents.slice(index - this.baseIndex);
    this.baseIndex = index;
  }

  /** A deep copy (entry payloads are shared: they are never mutated). The simulator keeps it across a crash. */
  clone(): MemoryStorage {
    const c = new MemoryStorage({ hardState: this.hardState });
    c.snap = { meta: { ...this.snap.meta, confState: copyConfState(this.snap.meta.confState) }, data: this.snap.data };
    c.baseIndex = this.baseIndex;
    c.baseTerm = this.baseTerm;
    c.ents = this.ents.map((e) => ({ ...e }));
    return c;
  }
}
