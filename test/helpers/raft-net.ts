/**
 * A tiny in-memory network of RaftNodes over MemoryStorage for the Raft unit tests: it runs each node's
 * Ready loop exactly as a driver must (persist, then send, then apply, then advance) and delivers messages
 * between nodes, with optional per-link drops. Deterministic: no timers, no randomness beyond seeded Rngs.
 * (The fault-injecting simulator lives in test/sim/; this is only for direct rule tests.)
 */
import {
  DEFAULT_RAFT_CONFIG,
  MemoryStorage,
  RaftNode,
  createRng,
  type ConfState,
  type Entry,
  type Message,
  type NodeId,
  type RaftConfig,
  type Ready,
} from "../../src/raft/index.ts";

/** One member of the test network and what its state machine has seen. */
export interface NetMember {
  id: NodeId;
  node: RaftNode;
  storage: MemoryStorage;
  /** Normal, non-empty entries applied, in order (the "state machine"). */
  applied: Entry[];
  appliedIndex: number;
  readStates: Array<{ requestId: string; index: number }>;
  droppedReads: string[];
  /** Every Ready handled, for tests of the I/O contract. */
  readies: Ready[];
  /**
   * A Ready begun by `beginReady` whose write is not yet durable (its fsync is "in flight"), with the
   * durable state from before it: a crash now restores exactly that (see `crashPending`).
   */
  pending?: { rd: Ready; durable: MemoryStorage; appliedIndex: number; appliedCount: number };
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/**
 * A storage whose log holds one entry per item of `terms` (entry i+1 has term terms[i] and data `data[i]`
 * or ""), with hard state `hsTerm`/commit and bootstrap voters `voters` — to set up a scenario directly.
 */
export function storageWith(voters: NodeId[], terms: number[], hs: { term: number; commit: number; vote?: NodeId }, data: string[] = []): MemoryStorage {
  const st = new MemoryStorage({ confState: { voters, votersOutgoing: [], learners: [] }, hardState: { term: hs.term, vote: hs.vote ?? "", commit: hs.commit } });
  st.append(terms.map((term, i) => ({ index: i + 1, term, type: "normal" as const, data: enc.encode(data[i] ?? "") })));
  return st;
}

/** UTF-8 bytes of `s` (test payloads). */
export function bytes(s: string): Uint8Array {
  return enc.encode(s);
}

/** The applied payloads of `m` as strings. */
export function appliedData(m: NetMember): string[] {
  return m.applied.map((e) => dec.decode(e.data));
}

/** A test cluster. Messages are queued and delivered by `deliver()`/`stabilize()`; `cut` drops links. */
export class RaftNet {
  readonly members = new Map<NodeId, NetMember>();
  queue: Message[] = [];
  /** Links "a->b" whose messages are dropped. */
  readonly cut = new Set<string>();
  private seed: number;

  /**
   * @param ids the initial voters (bootstrap membership), unless `confState` is given.
   * @param config overrides of DEFAULT_RAFT_CONFIG for every node.
   */
  constructor(
    ids: NodeId[],
    private readonly config: Partial<RaftConfig> = {},
    opts: { seed?: number; confState?: ConfState; extra?: NodeId[] } = {},
  ) {
    this.seed = opts.seed ?? 1;
    const cs = opts.confState ?? { voters: ids, votersOutgoing: [], learners: [] };
    for (const id of ids) this.add(id, new MemoryStorage({ confState: cs }));
    for (const id of opts.extra ?? []) this.add(id, new MemoryStorage());
  }

  /** Adds a member with `storage` (a joining node passes an empty MemoryStorage). */
  add(id: NodeId, storage: MemoryStorage, applied = 0): NetMember {
    const cfg: RaftConfig = { ...DEFAULT_RAFT_CONFIG, ...this.config, id, applied };
    const node = new RaftNode(cfg, storage, createRng(this.seed++));
    const m: NetMember = { id, node, storage, applied: [], appliedIndex: applied, readStates: [], droppedReads: [], readies: [] };
    const old = this.members.get(id);
    if (old) m.applied = old.applied;
    this.members.set(id, m);
    return m;
  }

  get(id: NodeId): NetMember {
    const m = this.members.get(id);
    if (!m) throw new Error(`no member ${id}`);
    return m;
  }

  node(id: NodeId): RaftNode {
    return this.get(id).node;
  }

  /** Handles one Ready of `id` as the contract says; returns it (or undefined if none, or one is pending). */
  handleReady(id: NodeId): Ready | undefined {
    if (this.get(id).pending) return undefined;
    const rd = this.beginReady(id);
    if (rd) this.finishReady(id);
    return rd;
  }

  /**
   * The first half of a Ready as src/server/node.ts runs it with its WAL fsync off the event loop
   * (docs/storage.md): `sendNow` is queued, the snapshot, entries and hard state are written (readable,
   * not yet durable) and the committed entries applied. `messages` and `advance()` wait for
   * `finishReady(id)`; until then the test may step messages, propose and tick `id` (its `hasReady()` is
   * false). Returns undefined when `id` has no Ready; throws when one is already pending.
   */
  beginReady(id: NodeId): Ready | undefined {
    const m = this.get(id);
    if (m.pending) throw new Error(`${id} already has a Ready pending`);
    if (!m.node.hasReady()) return undefined;
    const rd = m.node.ready();
    m.readies.push(rd);
    m.pending = { rd, durable: m.storage.clone(), appliedIndex: m.appliedIndex, appliedCount: m.applied.length };
    this.queue.push(...rd.sendNow);
    if (rd.snapshot) m.storage.applySnapshot(rd.snapshot);
    m.storage.append(rd.entries);
    if (rd.hardState) m.storage.setHardState(rd.hardState);
    if (rd.snapshot) m.appliedIndex = rd.snapshot.meta.index;
    for (const e of rd.committedEntries) {
      if (e.index !== m.appliedIndex + 1) throw new Error(`${id} applies ${e.index} after ${m.appliedIndex}`);
      m.appliedIndex = e.index;
      if (e.type === "normal" && e.data.byteLength > 0) m.applied.push(e);
    }
    m.readStates.push(...rd.readStates);
    m.droppedReads.push(...rd.droppedReadIds);
    return rd;
  }

  /** The pending Ready of `id` is durable: its `messages` are queued and `advance()` is called. Throws when none is pending. */
  finishReady(id: NodeId): Ready {
    const m = this.get(id);
    const p = m.pending;
    if (!p) throw new Error(`${id} has no Ready pending`);
    m.pending = undefined;
    this.queue.push(...p.rd.messages);
    m.node.advance();
    return p.rd;
  }

  /**
   * `id` crashes while its Ready's fsync is in flight: that Ready's writes and applies are lost (they were
   * never durable; its `messages` never leave), everything before it is kept, and the node restarts.
   */
  crashPending(id: NodeId): NetMember {
    const m = this.get(id);
    const p = m.pending;
    if (!p) throw new Error(`${id} has no Ready pending`);
    m.pending = undefined;
    m.storage = p.durable;
    m.appliedIndex = p.appliedIndex;
    m.applied.length = p.appliedCount;
    return this.restart(id);
  }

  /** Handles every pending Ready once. */
  handleAllReady(): boolean {
    let any = false;
    for (const id of this.members.keys()) if (this.handleReady(id)) any = true;
    return any;
  }

  /** Delivers the queued messages (those queued now; replies queue for the next call). Returns how many. */
  deliver(filter: (m: Message) => boolean = () => true): number {
    const batch = this.queue;
    this.queue = [];
    let n = 0;
    for (const msg of batch) {
      if (!filter(msg)) continue;
      if (this.cut.has(`${msg.from}->${msg.to}`)) continue;
      const to = this.members.get(msg.to);
      if (!to) continue;
      to.node.step(msg);
      n++;
    }
    return n;
  }

  /**
   * Runs Ready handling and delivery until quiet; throws if that takes more than `maxRounds` rounds.
   * Messages for which `filter` is false are dropped.
   */
  stabilize(maxRounds = 200, filter: (m: Message) => boolean = () => true): void {
    for (let i = 0; i < maxRounds; i++) {
      const readies = this.handleAllReady();
      if (!readies && this.queue.length === 0) return;
      this.deliver(filter);
    }
    throw new Error("network did not stabilize");
  }

  /** Ticks `id` `n` times (handling nothing in between). */
  tick(id: NodeId, n = 1): void {
    for (let i = 0; i < n; i++) this.node(id).tick();
  }

  /** Ticks every node once and stabilizes; repeated `n` times. */
  tickAll(n = 1): void {
    for (let i = 0; i < n; i++) {
      for (const m of this.members.values()) m.node.tick();
      this.stabilize();
    }
  }

  /** Cuts every link to and from `id`. */
  isolate(id: NodeId): void {
    for (const other of this.members.keys()) {
      if (other === id) continue;
      this.cut.add(`${id}->${other}`);
      this.cut.add(`${other}->${id}`);
    }
  }

  heal(): void {
    this.cut.clear();
  }

  /** Campaigns `id` and stabilizes: the usual way to elect a leader in a test. */
  elect(id: NodeId): void {
    this.node(id).campaign();
    this.stabilize();
  }

  /** Restarts `id` from its durable storage (unhandled Ready state is lost, like a crash). */
  restart(id: NodeId): NetMember {
    const m = this.get(id);
    this.queue = this.queue.filter((q) => q.to !== id);
    return this.add(id, m.storage.clone(), m.appliedIndex);
  }

  leaderIds(): NodeId[] {
    return [...this.members.values()].filter((m) => m.node.status().role === "leader").map((m) => m.id);
  }
}
