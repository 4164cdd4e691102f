/**
 * Bookkeeping of client requests waiting on the Raft core: proposals waiting for their entry to apply, and
 * linearizable reads waiting for a ReadIndex and then for the applied index to reach it. Bounded: the node
 * refuses new proposals past `queueDepth` (429), so these maps never grow without limit.
 */
import type { AppliedEntry } from "../kv/state-machine.ts";

/** A proposal's fate as the node reports it to the waiting request. */
export type ProposalOutcome =
  | { kind: "applied"; entry: AppliedEntry }
  /** Another entry was committed at this index: the proposal can never apply. Safe to retry. */
  | { kind: "dropped" }
  /** The request gave up (deadline, abort, shutdown) after proposing: it may or may not apply later. */
  | { kind: "unknown"; reason: string };

interface ProposalWaiter {
  term: number;
  /** When the proposal was made (the caller's monotonic clock, ms); NaN when not given. */
  proposedMs: number;
  settle: (o: ProposalOutcome) => void;
}

/**
 * Proposals waiting for apply, by log index. A proposal at (index, term) succeeded iff the entry applied at
 * `index` has term `term` (Raft paper §5.3, Log Matching: an index holds one entry per term).
 */
export class ProposalWaiters {
  private readonly byIndex = new Map<number, ProposalWaiter>();

  /** Number of proposals waiting. */
  get size(): number {
    return this.byIndex.size;
  }

  /**
   * Waits for the entry proposed at (index, term) at `proposedMs` (ms, the caller's monotonic clock; see
   * `proposedAtMs`). The promise never rejects.
   */
  wait(index: number, term: number, signal?: AbortSignal, proposedMs = NaN): Promise<ProposalOutcome> {
    return new Promise((resolve) => {
      const onAbort = () => {
        if (this.byIndex.get(index)?.settle === settle) this.byIndex.delete(index);
        resolve({ kind: "unknown", reason: "the request was cancelled or timed out after it was proposed" });
      };
      const settle = (o: ProposalOutcome) => {
        signal?.removeEventListener("abort", onAbort);
        resolve(o);
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener("abort", onAbort, { once: true });
      // A leftover waiter at this index belongs to an older term's proposal that was overwritten.
      this.byIndex.get(index)?.settle({ kind: "dropped" });
      this.byIndex.set(index, { term, proposedMs, settle });
    });
  }

  /**
   * When the proposal waiting at `index` with `term` was made (ms, as given to `wait`); undefined when none
   * waits there with that term (another node's proposal, or an overwritten one). The node's commit latency
   * histogram (`edgekv_proposal_commit_seconds`) reads it when the entry commits.
   */
  proposedAtMs(index: number, term: number): number | undefined {
    const w = this.byIndex.get(index);
    return w && w.term === term && !Number.isNaN(w.proposedMs) ? w.proposedMs : undefined;
  }

  /** Settles the waiter of an applied entry (if any). */
  applied(entry: AppliedEntry, term: number): void {
    const w = this.byIndex.get(entry.index);
    if (!w) return;
    this.byIndex.delete(entry.index);
    w.settle(w.term === term ? { kind: "applied", entry } : { kind: "dropped" });
  }

  /** Settles every waiter (shutdown) with an unknown outcome. */
  failAll(reason: string): void {
    for (const w of this.byIndex.values()) w.settle({ kind: "unknown", reason });
    this.byIndex.clear();
  }
}

interface ReadWaiter {
  /** Read index once known; -1 while the ReadIndex round is under way. */
  index: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

/**
 * Linearizable reads (Raft thesis §6.4): each waits for its ReadIndex, then for applied >= that index.
 * Ids are unique per node (a counter), so a late answer for a finished read is ignored.
 */
export class ReadWaiters {
  private readonly byId = new Map<string, ReadWaiter>();
  private seq = 0;

  get size(): number {
    return this.byId.size;
  }

  /** A fresh request id for `RaftNode.readIndex`. */
  nextId(): string {
    return `r${++this.seq}`;
  }

  /** Registers a read; resolves when `release` finds it applied, rejects on `fail`/abort. */
  wait(id: string, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        this.byId.delete(id);
        reject(signal?.reason instanceof Error ? signal.reason : new DOMException("read timed out", "TimeoutError"));
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener("abort", onAbort, { once: true });
      const done = () => signal?.removeEventListener("abort", onAbort);
      this.byId.set(id, {
        index: -1,
        resolve: () => {
          done();
          resolve();
        },
        reject: (e) => {
          done();
          reject(e);
        },
      });
    });
  }

  /** The ReadIndex of `id` is known. */
  indexKnown(id: string, index: number): void {
    const w = this.byId.get(id);
    if (w) w.index = index;
  }

  /** Resolves every read whose index is known and <= `applied`. */
  release(applied: number): void {
    for (const [id, w] of this.byId) {
      if (w.index >= 0 && w.index <= applied) {
        this.byId.delete(id);
        w.resolve();
      }
    }
  }

  /** Rejects one read (the core dropped it: leadership lost before it was confirmed). */
  fail(id: string, err: Error): void {
    const w = this.byId.get(id);
    if (!w) return;
    this.byId.delete(id);
    w.reject(err);
  }

  /** Rejects every read (shutdown). */
  failAll(err: Error): void {
    for (const w of this.byId.values()) w.reject(err);
    this.byId.clear();
  }
}
