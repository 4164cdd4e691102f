/**
 * One simulated Raft node: a core over a MemoryStorage, a register machine, and the driver loop that
 * follows the Ready contract of src/raft/types.ts exactly (sendNow, persist, messages, apply, advance).
 *
 * What survives a crash is what a real node declares durable: the MemoryStorage (log, hard state,
 * snapshot) and the register machine with its applied index (written atomically with each apply). The
 * core's memory, queued reads and undelivered messages are lost; the restarted core gets
 * `applied` = the machine's applied index.
 *
 * Asynchronous persist (when the simulator passes `DriverHooks.schedulePersist`) is the Ready loop of
 * src/server/node.ts with its WAL fsync off the event loop (docs/storage.md): a Ready that must be synced
 * (new entries, or a new term or vote) is written and its committed entries applied at once, but its
 * `messages` and `advance()` wait until the simulator completes the persist; meanwhile the node steps
 * messages, proposals and ticks. With `maxReadysInFlight` > 1 it also writes the next Readys (pipelined
 * persist): they queue behind the first, each fsync completes no earlier than the one before (one
 * fdatasync of the WAL covers every earlier write), and a Ready's messages and advance() follow only once
 * it and every earlier one are durable. A crash keeps a prefix of the unsynced writes (SQLite's WAL): the
 * simulator draws the Ready where the prefix ends, and of that Ready nothing, its entries and hard state
 * without its applies, or all of it. A snapshot install is durable at once (the node restores it with
 * FULL sync).
 */
import { MemoryStorage } from "../../src/raft/memory-storage.ts";
import type { ConfState, Entry, Message, NodeId, RaftBug, RaftConfig, RaftStatus, Ready, Rng, Snapshot } from "../../src/raft/types.ts";
import { DEFAULT_RAFT_CONFIG } from "../../src/raft/types.ts";
import { decodeCommand, RegisterMachine, type ApplyResult } from "./register-machine.ts";

/** The core's facade as the simulator uses it (src/raft/raw-node.ts `RaftNode`). */
export interface CoreNode {
  tick(): void;
  step(m: Message): void;
  propose(data: Uint8Array): { index: number; term: number };
  proposeConfChange(cc: { steps: Array<{ type: "addLearner" | "promote" | "remove"; nodeId: NodeId }> }): { index: number; term: number };
  readIndex(requestId: string): void;
  transferLeader(id: NodeId): void;
  campaign(): void;
  hasReady(): boolean;
  ready(): Ready;
  advance(): void;
  takeSendNow(): Message[];
  status(): RaftStatus;
  reportUnreachable(id: NodeId): void;
  reportSnapshot(id: NodeId, ok: boolean): void;
}

/** Builds a core; injected so the simulator does not depend on the core's constructor shape. */
export type CoreFactory = (config: RaftConfig, storage: MemoryStorage, rng: Rng) => CoreNode;

/** What the driver tells the simulator about. */
export interface DriverHooks {
  send(m: Message): void;
  /** A normal or confChange entry was applied; `result` is set for client commands. */
  applied(node: SimNode, entry: Entry, result: ApplyResult | undefined): void;
  /** A snapshot replaced the machine's state (InstallSnapshot). */
  restoredSnapshot(node: SimNode, snapshot: Snapshot): void;
  /** Called after each Ready's durable write (step 2), before anything is applied. */
  persisted(node: SimNode, rd: Ready): void;
  /** A ReadIndex request may now be served from `node.machine`. */
  readReady(node: SimNode, requestId: string): void;
  /** A ReadIndex request was refused (definite failure). */
  readDropped(node: SimNode, requestId: string): void;
  /**
   * Asynchronous persist: called for each Ready that needs an fsync; returns when the fsync completes, as
   * (tick, sequence number in the simulator's event order). Absent: every Ready is durable at once.
   */
  schedulePersist?(node: SimNode): { dueTick: number; seq: number };
}

/** What a crash keeps of a Ready whose fsync was in flight (a prefix of its WAL writes). */
export type CrashKeeps = "nothing" | "write" | "all";

/**
 * A Ready written (and its committed entries applied) whose messages and advance() wait: for its own
 * fsync (`synced` false), or only for an earlier Ready's (`synced` true: it needed no fsync of its own).
 */
export interface PendingPersist {
  rd: Ready;
  synced: boolean;
  /** When its fsync completes: tick, then sequence number in the simulator's event order. */
  dueTick: number;
  seq: number;
  /** The durable state from before the Ready's writes: what a crash that keeps nothing restores. */
  durableStorage: MemoryStorage;
  durableMachine: RegisterMachine;
}

/** Snapshot policy: snapshot every `snapshotEveryEntries` applied entries, keep `keepTailEntries` in the log. */
export interface SnapshotPolicy {
  snapshotEveryEntries: number;
  keepTailEntries: number;
}

/** Per-node timing and bug settings. */
export interface NodeSettings {
  electionTicks: number;
  heartbeatTicks: number;
  maxPayloadEntries: number;
  maxInflight: number;
  /** RaftConfig.maxInflightBytes, bytes. */
  maxInflightBytes: number;
  /** RaftConfig.maxReadysInFlight (only asynchronous persist ever has more than one out). */
  maxReadysInFlight: number;
  bugs: ReadonlySet<RaftBug>;
}

/** A simulated node; `core` is undefined while crashed. */
export class SimNode {
  core: CoreNode | undefined;
  /** Bumped on every restart so stale client callbacks can be recognised. */
  incarnation = 0;
  /** Set while paused (a GC pause or SIGSTOP): no ticks, messages held until resume. */
  paused = false;
  /** Messages that arrived while paused, delivered on resume in arrival order. */
  held: Message[] = [];
  private waitingReads: Array<{ requestId: string; index: number }> = [];
  /**
   * Asynchronous persist: Readys written and not yet advanced, oldest first (at most maxReadysInFlight).
   * The first is always one whose fsync is in flight (`synced` false); the others queue behind it.
   */
  pending: PendingPersist[] = [];

  constructor(
    readonly id: NodeId,
    public storage: MemoryStorage,
    public machine: RegisterMachine,
    private readonly settings: NodeSettings,
    private readonly snapshots: SnapshotPolicy,
    private readonly hooks: DriverHooks,
    private readonly factory: CoreFactory,
  ) {}

  get up(): boolean {
    return this.core !== undefined;
  }

  /** Starts (or restarts) the core over the durable state with a fresh seeded rng. */
  start(rng: Rng): void {
    const config: RaftConfig = {
      ...DEFAULT_RAFT_CONFIG,
      id: this.id,
      electionTicks: this.settings.electionTicks,
      heartbeatTicks: this.settings.heartbeatTicks,
      maxPayloadEntries: this.settings.maxPayloadEntries,
      maxInflight: this.settings.maxInflight,
      maxInflightBytes: this.settings.maxInflightBytes,
      maxReadysInFlight: this.settings.maxReadysInFlight,
      applied: this.machine.appliedIndex,
      bugs: this.settings.bugs,
    };
    this.core = this.factory(config, this.storage, rng);
    this.incarnation++;
    this.paused = false;
    this.held = [];
    this.waitingReads = [];
    this.pending = [];
    this.drain();
  }

  /**
   * Crash: everything not durable is lost. With persists in flight, the writes reached the disk up to a
   * point: every Ready before `pending[cut]`, and of that one what `keeps` says (the entries and hard
   * state are one transaction, the applies follow); nothing after it.
   */
  crash(keeps: CrashKeeps = "nothing", cut = 0): void {
    const p = this.pending[cut];
    const next = this.pending[cut + 1];
    this.pending = [];
    if (p && keeps === "nothing") {
      this.storage = p.durableStorage;
      this.machine = p.durableMachine;
    } else if (p && keeps === "write") {
      if (next) this.storage = next.durableStorage;
      this.machine = p.durableMachine;
    } else if (p && next) {
      this.storage = next.durableStorage;
      this.machine = next.durableMachine;
    }
    this.core = undefined;
    this.paused = false;
    this.held = [];
    this.waitingReads = [];
  }

  /** Wipes the durable state too (a node removed from the cluster and re-added as a new learner). */
  wipe(): void {
    this.crash();
    const empty: ConfState = { voters: [], votersOutgoing: [], learners: [] };
    this.storage = new MemoryStorage({ confState: empty });
    this.machine = new RegisterMachine(empty);
  }

  /** Delivers one message (held while paused). */
  deliver(m: Message): void {
    if (!this.core) return;
    if (this.paused) {
      this.held.push(m);
      return;
    }
    this.core.step(m);
    this.drain();
  }

  /** Advances the core's clock by one tick (not while paused). */
  tick(): void {
    if (!this.core || this.paused) return;
    this.core.tick();
    this.drain();
  }

  /** Ends a pause; held messages are delivered by the simulator afterwards (see sim.ts). */
  resume(): Message[] {
    this.paused = false;
    const held = this.held;
    this.held = [];
    return held;
  }

  /** Runs `fn` on the core then handles the resulting Ready batches. */
  withCore<T>(fn: (core: CoreNode) => T): T {
    if (!this.core) throw new Error(`node ${this.id} is down`);
    try {
      return fn(this.core);
    } finally {
      this.drain();
    }
  }

  /** Handles Ready batches until none is left (bounded: a core that never quiesces is a bug). */
  drain(): void {
    // The core says when another Ready may go out (maxReadysInFlight, a snapshot alone). A snapshot that
    // is due waits for the pipeline to empty (maybeSnapshot), so no new Ready goes out meanwhile.
    for (let rounds = 0; this.core && !(this.pending.length > 0 && this.snapshotDue()) && this.core.hasReady(); rounds++) {
      if (rounds >= 1000) throw new Error(`node ${this.id}: core still has a Ready after 1000 rounds`);
      this.handleReady(this.core, this.core.ready());
    }
    // As src/server/node.ts process(): while an fsync is in flight the leader's AppendEntries, heartbeats
    // and ReadIndex rounds still leave (RaftNode.takeSendNow).
    if (this.core && this.pending.length > 0) for (const m of this.core.takeSendNow()) this.hooks.send(m);
  }

  private handleReady(core: CoreNode, rd: Ready): void {
    if (this.hooks.schedulePersist) {
      this.handleReadyAsync(core, rd, this.hooks.schedulePersist);
      return;
    }
    // 1. The leader's AppendEntries may go out before the write (Raft thesis §10.2.1).
    for (const m of rd.sendNow) this.hooks.send(m);
    // 2. One atomic durable write: snapshot, entries, hard state.
    if (rd.snapshot) this.storage.applySnapshot(rd.snapshot);
    this.storage.append(rd.entries);
    if (rd.hardState) this.storage.setHardState(rd.hardState);
    this.hooks.persisted(this, rd);
    // 3. Everything else only after the write.
    for (const m of rd.messages) this.hooks.send(m);
    // 4. Apply.
    if (rd.snapshot && rd.snapshot.meta.index > this.machine.appliedIndex) {
      this.machine.restore(rd.snapshot.data);
      this.hooks.restoredSnapshot(this, rd.snapshot);
    }
    this.applyCommitted(rd);
    // 5.
    core.advance();
    this.maybeSnapshot();
  }

  /**
   * A Ready the way src/server/node.ts handles it with a WAL syncer: sendNow, the snapshot (durable at
   * once), the entries and hard state written, committed entries applied and reads served; when an fsync
   * is owed, or an earlier Ready's still is, `messages` and `advance()` wait for {@link completePersist}.
   */
  private handleReadyAsync(core: CoreNode, rd: Ready, schedule: (node: SimNode) => { dueTick: number; seq: number }): void {
    for (const m of rd.sendNow) this.hooks.send(m);
    if (rd.snapshot) {
      this.storage.applySnapshot(rd.snapshot);
      if (rd.hardState) this.storage.setHardState(rd.hardState);
      if (rd.snapshot.meta.index > this.machine.appliedIndex) {
        this.machine.restore(rd.snapshot.data);
        this.hooks.restoredSnapshot(this, rd.snapshot);
      }
    }
    // etcd raft's MustSync, as node.ts persist(): only new entries or a new term/vote need the fsync.
    let owed = rd.entries.length > 0;
    if (!owed && rd.hardState && !rd.snapshot) {
      const before = this.storage.initialState().hardState;
      owed = before.term !== rd.hardState.term || before.vote !== rd.hardState.vote;
    }
    let pending: PendingPersist | undefined;
    const prev = this.pending[this.pending.length - 1];
    if (owed) {
      // Fsyncs complete in order: one fdatasync of the WAL makes every earlier write durable too.
      const due = schedule(this);
      const dueTick = prev && prev.dueTick > due.dueTick ? prev.dueTick : due.dueTick;
      pending = { rd, synced: false, dueTick, seq: due.seq, durableStorage: this.storage.clone(), durableMachine: this.machine.clone() };
    } else if (prev) {
      pending = { rd, synced: true, dueTick: prev.dueTick, seq: prev.seq, durableStorage: this.storage.clone(), durableMachine: this.machine.clone() };
    }
    this.storage.append(rd.entries);
    if (rd.hardState) this.storage.setHardState(rd.hardState);
    this.hooks.persisted(this, rd);
    if (!pending) for (const m of rd.messages) this.hooks.send(m);
    this.applyCommitted(rd);
    if (pending) {
      this.pending.push(pending);
      return;
    }
    core.advance();
    this.maybeSnapshot();
  }

  /** Applies the Ready's committed entries, then serves and fails reads (steps 4 of the contract). */
  private applyCommitted(rd: Ready): void {
    for (const e of rd.committedEntries) {
      if (e.index <= this.machine.appliedIndex) continue; // already in the restored snapshot
      if (e.type === "confChange") {
        this.machine.applyConf(e.index, e.term, e.confChange ?? { steps: [] }, e.confState);
        this.hooks.applied(this, e, undefined);
      } else {
        const result = this.machine.apply(e.index, e.term, decodeCommand(e.data));
        this.hooks.applied(this, e, result);
      }
    }
    for (const rs of rd.readStates) this.waitingReads.push({ requestId: rs.requestId, index: rs.index });
    this.serveReads();
    for (const id of rd.droppedReadIds) this.hooks.readDropped(this, id);
  }

  /**
   * The first pending Ready's fsync completed: it and the Readys queued behind it that needed no fsync
   * of their own are durable; in order, their messages leave and the core advances. Then the next Readys run.
   */
  completePersist(): void {
    if (this.pending.length === 0 || !this.core) return;
    this.pending[0]!.synced = true;
    while (this.pending[0]?.synced) {
      const p = this.pending.shift()!;
      for (const m of p.rd.messages) this.hooks.send(m);
      this.core.advance();
    }
    this.maybeSnapshot();
    this.drain();
  }

  private serveReads(): void {
    const still: Array<{ requestId: string; index: number }> = [];
    for (const r of this.waitingReads) {
      if (r.index <= this.machine.appliedIndex) this.hooks.readReady(this, r.requestId);
      else still.push(r);
    }
    this.waitingReads = still;
  }

  private snapshotDue(): boolean {
    return this.machine.appliedIndex - this.storage.snapshot().meta.index >= this.snapshots.snapshotEveryEntries;
  }

  /**
   * Frequent snapshots with a short kept tail, so lagging followers need InstallSnapshot. Only with no
   * Ready in flight (as src/server/node.ts): the machine may have applied past the core's applied index
   * until they are advanced, and a compaction past that breaks the core's snapshot <= applied.
   */
  private maybeSnapshot(): void {
    if (this.pending.length > 0 || !this.snapshotDue()) return;
    const applied = this.machine.appliedIndex;
    if (applied > this.storage.lastIndex() || applied < this.storage.firstIndex() - 1) return;
    this.storage.createSnapshot(applied, this.machine.confState, this.machine.snapshot());
    const compactTo = applied - this.snapshots.keepTailEntries;
    if (compactTo >= this.storage.firstIndex()) this.storage.compact(compactTo);
  }
}
