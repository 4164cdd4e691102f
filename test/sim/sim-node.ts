/**
 * One simulated Raft node: a core over a MemoryStorage, a register machine, and the driver loop that
 * follows the Ready contract of src/raft/types.ts exactly (sendNow, persist, messages, apply, advance).
 *
 * What survives a crash is what a real node declares durable: the MemoryStorage (log, hard state,
 * snapshot) and the register machine with its applied index (written atomically with each apply). The
 * core's memory, queued reads and undelivered messages are lost; the restarted core gets
 * `applied` = the machine's applied index.
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
      applied: this.machine.appliedIndex,
      bugs: this.settings.bugs,
    };
    this.core = this.factory(config, this.storage, rng);
    this.incarnation++;
    this.paused = false;
    this.held = [];
    this.waitingReads = [];
    this.drain();
  }

  /** Crash: everything not durable is lost. */
  crash(): void {
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
    for (let rounds = 0; this.core && this.core.hasReady(); rounds++) {
      if (rounds >= 1000) throw new Error(`node ${this.id}: core still has a Ready after 1000 rounds`);
      this.handleReady(this.core, this.core.ready());
    }
  }

  private handleReady(core: CoreNode, rd: Ready): void {
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
    // 5.
    core.advance();
    this.maybeSnapshot();
  }

  private serveReads(): void {
    const still: Array<{ requestId: string; index: number }> = [];
    for (const r of this.waitingReads) {
      if (r.index <= this.machine.appliedIndex) this.hooks.readReady(this, r.requestId);
      else still.push(r);
    }
    this.waitingReads = still;
  }

  /** Frequent snapshots with a short kept tail, so lagging followers need InstallSnapshot. */
  private maybeSnapshot(): void {
    const applied = this.machine.appliedIndex;
    const snapIndex = this.storage.snapshot().meta.index;
    if (applied - snapIndex < this.snapshots.snapshotEveryEntries) return;
    if (applied > this.storage.lastIndex() || applied < this.storage.firstIndex() - 1) return;
    this.storage.createSnapshot(applied, this.machine.confState, this.machine.snapshot());
    const compactTo = applied - this.snapshots.keepTailEntries;
    if (compactTo >= this.storage.firstIndex()) this.storage.compact(compactTo);
  }
}
