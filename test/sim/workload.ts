/**
 * The simulated clients: each runs one operation at a time (put, get, compare-and-swap on a few keys)
 * against the node it believes is the leader, and records the history the linearizability checker reads.
 *
 * Fate of a write: it was proposed at (index, term) on one node; it succeeded iff that node applies, at that
 * index, an entry with that term and that payload (the op id). Another entry there = definite failure
 * (retried as a new attempt). Crash of that node, a snapshot that jumps over the index, or a timeout =
 * unknown: recorded without output (it may still take effect). Reads go through ReadIndex; an unanswered
 * read has no effect and is dropped from the history.
 */
import { NotLeaderError, ProposalDroppedError, RaftError, type Entry, type NodeId } from "../../src/raft/types.ts";
import type { KvInput, KvOperation } from "../lin/kv-model.ts";
import { encodeCommand, type ApplyResult, type RegisterCommand } from "./register-machine.ts";
import type { SimNode } from "./sim-node.ts";
import type { SimRng } from "./sim-rng.ts";

/** Workload knobs (drawn per seed). Probabilities in per-mille. */
export interface WorkloadMix {
  clients: number;
  keys: string[];
  /** Chance per tick that an idle client starts an operation. */
  startPerMille: number;
  getPerMille: number;
  casPerMille: number;
  /** A client gives up on an operation after this many ticks (outcome unknown for writes). */
  opTimeoutTicks: number;
}

interface OpState {
  no: number;
  input: KvInput;
  call: number;
  startTick: number;
  attempt: number;
  /** Where it is now: waiting to be (re)sent at `retryAtTick`, or handed to a node. */
  at: { nodeId: NodeId; incarnation: number; index: number; term: number; opId: string; requestId: string } | undefined;
  retryAtTick: number;
}

interface Client {
  id: number;
  guess: NodeId;
  op: OpState | undefined;
  lastSeen: Map<string, string | null>;
  opsDone: number;
}

/** The sim's view the workload needs. */
export interface WorkloadEnv {
  readonly nowTick: number;
  /** The next global event time (strictly increasing) for history call/return stamps. */
  clock(): number;
  node(id: NodeId): SimNode | undefined;
  upNodeIds(): NodeId[];
  trace(line: string): void;
}

/** The client population and the history it records. */
export class Workload {
  readonly history: KvOperation[] = [];
  /** For each unknown-outcome write in `history`: the op id of its last attempt (the only one that may apply). */
  readonly unknownOpIds = new Map<KvOperation, string>();
  private clients: Client[] = [];
  private opCounter = 0;
  /** Liveness phase: an operation must complete within this many ticks (long enough to drain a backlog). */
  private livenessBoundTicks = 0;
  /** When set, no op may time out: liveness phase. */
  private noTimeouts = false;
  allowNewOps = true;
  /** Ops that timed out while timeouts were forbidden (liveness violations). */
  readonly livenessFailures: string[] = [];

  constructor(
    private readonly rng: SimRng,
    readonly mix: WorkloadMix,
    nodeIds: NodeId[],
  ) {
    for (let i = 0; i < mix.clients; i++) this.clients.push({ id: i + 1, guess: rng.pick(nodeIds), op: undefined, lastSeen: new Map(), opsDone: 0 });
  }

  /** Liveness phase: operations must complete; none may time out. */
  enterLiveness(nowTick: number, boundTicks: number): void {
    this.noTimeouts = true;
    this.livenessBoundTicks = boundTicks;
    for (const c of this.clients) if (c.op) c.op.startTick = nowTick;
  }

  /** Pending operations, for the end-of-liveness check: "client N: op (pending K ticks)". */
  pending(nowTick: number): string[] {
    return this.clients.filter((c) => c.op).map((c) => `client ${c.id} op ${c.op!.no} ${JSON.stringify(c.op!.input)} pending ${nowTick - c.op!.startTick} ticks`);
  }

  /** One tick of client activity. */
  step(env: WorkloadEnv): void {
    for (const c of this.clients) {
      if (!c.op) {
        if (this.allowNewOps && this.rng.chance(this.mix.startPerMille)) this.begin(c, env);
        else continue;
      }
      const op = c.op!;
      if (this.proposalOrphaned(op, env)) {
        // As a real server answers outcome_unknown when leadership moves on before its proposal commits.
        this.giveUp(c, env, `leader changed: ${op.at!.nodeId}'s log no longer reaches index ${op.at!.index}`);
        continue;
      }
      if (env.nowTick - op.startTick > (this.noTimeouts ? this.livenessBoundTicks : this.mix.opTimeoutTicks)) {
        if (this.noTimeouts) {
          if (this.livenessFailures.length === 0) env.trace(`liveness: client ${c.id} op ${op.no} stuck`);
          this.livenessFailures.push(`client ${c.id} op ${op.no} ${describeInput(op.input)} did not complete within ${this.livenessBoundTicks} ticks of the liveness phase`);
          op.startTick = Number.POSITIVE_INFINITY; // report each op once
        } else {
          this.giveUp(c, env, "timeout");
          continue;
        }
      }
      if (op.at === undefined && env.nowTick >= op.retryAtTick) this.send(c, env);
    }
  }

  /**
   * A write proposed at (index, term) whose proposing node has moved to a later term with a log that ends
   * before that index: that node may never apply the index again (no new writes may come), so the client
   * would wait forever. Its fate is unknown (another node may still hold and commit the entry).
   */
  private proposalOrphaned(op: OpState, env: WorkloadEnv): boolean {
    const at = op.at;
    if (!at || at.requestId || op.input.kind === "get") return false;
    const node = env.node(at.nodeId);
    if (!node || !node.up || node.incarnation !== at.incarnation) return false;
    const st = node.core?.status();
    return st !== undefined && st.term > at.term && st.lastIndex < at.index;
  }

  private begin(c: Client, env: WorkloadEnv): void {
    const key = this.rng.pick(this.mix.keys);
    const no = ++this.opCounter;
    const r = this.rng.nextInt(1000);
    let input: KvInput;
    if (r < this.mix.getPerMille) input = { kind: "get", key };
    else if (r < this.mix.getPerMille + this.mix.casPerMille) {
      const expected = this.rng.chance(700) ? (c.lastSeen.get(key) ?? null) : null;
      input = { kind: "cas", key, expected, value: `c${c.id}.${no}` };
    } else input = { kind: "put", key, value: `c${c.id}.${no}` };
    c.op = { no, input, call: env.clock(), startTick: env.nowTick, attempt: 0, at: undefined, retryAtTick: env.nowTick };
    env.trace(`client ${c.id} invokes op ${no} ${describeInput(input)}`);
  }

  private pickNode(c: Client, env: WorkloadEnv): SimNode | undefined {
    const guess = env.node(c.guess);
    if (guess && guess.up) return guess;
    const up = env.upNodeIds();
    if (up.length === 0) return undefined;
    c.guess = this.rng.pick(up);
    return env.node(c.guess);
  }

  private retryLater(c: Client, env: WorkloadEnv, leaderHint: NodeId): void {
    const op = c.op!;
    op.at = undefined;
    op.retryAtTick = env.nowTick + 1;
    if (leaderHint) c.guess = leaderHint;
    else {
      const up = env.upNodeIds();
      if (up.length > 0) c.guess = this.rng.pick(up);
    }
  }

  private send(c: Client, env: WorkloadEnv): void {
    const op = c.op!;
    const node = this.pickNode(c, env);
    if (!node) return this.retryLater(c, env, "");
    if (node.paused) {
      // A frozen process does not answer: reads wait for it (that is how an old leader gets read from
      // after a pause), writes look elsewhere.
      if (op.input.kind !== "get") this.retryLater(c, env, "");
      else op.retryAtTick = env.nowTick + 1;
      return;
    }
    op.attempt++;
    const opId = `${c.id}.${op.no}.${op.attempt}`;
    try {
      if (op.input.kind === "get") {
        // A read has no effect until served, so each attempt is a fresh invocation.
        op.call = env.clock();
        op.at = { nodeId: node.id, incarnation: node.incarnation, index: 0, term: 0, opId, requestId: opId };
        node.withCore((core) => core.readIndex(opId));
        if (op.at) env.trace(`client ${c.id} op ${op.no} readIndex ${opId} at ${node.id}`);
      } else {
        const i = op.input;
        const cmd: RegisterCommand =
          i.kind === "put" ? { opId, kind: "put", key: i.key, value: i.value } : { opId, kind: "cas", key: i.key, expected: i.expected, value: i.value };
        const data = encodeCommand(cmd);
        // Register the pending proposal before the Ready is drained: a single-voter leader applies at once.
        const pos = node.withCore((core) => {
          const p = core.propose(data);
          op.at = { nodeId: node.id, incarnation: node.incarnation, index: p.index, term: p.term, opId, requestId: "" };
          return p;
        });
        if (c.op === op && op.at && op.at.opId === opId) env.trace(`client ${c.id} op ${op.no} proposed at ${node.id} index ${pos.index} term ${pos.term}`);
      }
    } catch (err) {
      if (c.op !== op) return; // completed meanwhile
      if (err instanceof NotLeaderError) return this.retryLater(c, env, err.leaderId);
      if (err instanceof ProposalDroppedError) return this.retryLater(c, env, "");
      if (err instanceof RaftError && err.code !== "invariant") return this.retryLater(c, env, "");
      throw err;
    }
  }

  private complete(c: Client, env: WorkloadEnv, output: KvOperation["output"], how: string): void {
    const op = c.op!;
    const ret = env.clock();
    this.history.push({ clientId: c.id, input: op.input, call: op.call, ret, output });
    if (op.input.kind === "get") c.lastSeen.set(op.input.key, output?.value ?? null);
    else if (op.input.kind === "put" || output?.ok) c.lastSeen.set(op.input.key, op.input.value);
    c.op = undefined;
    c.opsDone++;
    env.trace(`client ${c.id} op ${op.no} returns ${JSON.stringify(output)} (${how})`);
  }

  /** Gives up: a write's outcome becomes unknown (recorded without output); a read is dropped. */
  private giveUp(c: Client, env: WorkloadEnv, why: string): void {
    const op = c.op!;
    if (op.input.kind !== "get" && op.attempt > 0) {
      const entry: KvOperation = { clientId: c.id, input: op.input, call: op.call };
      this.history.push(entry);
      this.unknownOpIds.set(entry, `${c.id}.${op.no}.${op.attempt}`);
    }
    c.op = undefined;
    const up = env.upNodeIds();
    if (up.length > 0) c.guess = this.rng.pick(up);
    env.trace(`client ${c.id} op ${op.no} gives up (${why})${op.input.kind !== "get" && op.attempt > 0 ? ": outcome unknown" : ""}`);
  }

  /** A node applied an entry: settles the write proposed there at that index, if any. */
  onApplied(node: SimNode, entry: Entry, result: ApplyResult | undefined, env: WorkloadEnv): void {
    for (const c of this.clients) {
      const at = c.op?.at;
      if (!at || at.requestId || at.nodeId !== node.id || at.incarnation !== node.incarnation || at.index !== entry.index) continue;
      if (entry.term === at.term && result?.opId === at.opId) {
        this.complete(c, env, c.op!.input.kind === "cas" ? { ok: result.ok } : {}, `applied at ${node.id} index ${entry.index}`);
      } else {
        // Another entry took that index: this attempt can never commit (entries do not move).
        env.trace(`client ${c.id} op ${c.op!.no} attempt ${at.opId} lost index ${entry.index}; retrying`);
        this.retryLater(c, env, "");
      }
    }
  }

  /** A node installed a snapshot: writes pending there at covered indexes can no longer be told apart. */
  onSnapshot(node: SimNode, snapshotIndex: number, env: WorkloadEnv): void {
    for (const c of this.clients) {
      const at = c.op?.at;
      if (at && !at.requestId && at.nodeId === node.id && at.index <= snapshotIndex) this.giveUp(c, env, `snapshot at ${node.id} covers index ${at.index}`);
    }
  }

  /** A node crashed: whatever was handed to it gets no answer. */
  onCrash(node: SimNode, env: WorkloadEnv): void {
    for (const c of this.clients) {
      const at = c.op?.at;
      if (at && at.nodeId === node.id) {
        if (at.requestId) this.retryLater(c, env, "");
        else this.giveUp(c, env, `${node.id} crashed`);
      }
    }
  }

  /** ReadIndex confirmed and applied far enough: serve from the node's machine. */
  onReadReady(node: SimNode, requestId: string, env: WorkloadEnv): void {
    for (const c of this.clients) {
      const at = c.op?.at;
      if (at && at.requestId === requestId && at.nodeId === node.id && c.op!.input.kind === "get") {
        this.complete(c, env, { value: node.machine.get(c.op!.input.key) }, `read at ${node.id} applied ${node.machine.appliedIndex}`);
      }
    }
  }

  /** ReadIndex refused: try again (possibly elsewhere). */
  onReadDropped(node: SimNode, requestId: string, env: WorkloadEnv): void {
    for (const c of this.clients) {
      const at = c.op?.at;
      if (at && at.requestId === requestId && at.nodeId === node.id) {
        env.trace(`client ${c.id} op ${c.op!.no} read ${requestId} refused at ${node.id}`);
        this.retryLater(c, env, node.core?.status().leaderId ?? "");
      }
    }
  }

  /** Operations completed per client (for the summary). */
  opsDone(): number {
    return this.clients.reduce((n, c) => n + c.opsDone, 0);
  }
}

/** `put(a, v)` / `get(a)` / `cas(a, x -> v)`. */
export function describeInput(i: KvInput): string {
  return i.kind === "put" ? `put(${i.key}, ${i.value})` : i.kind === "get" ? `get(${i.key})` : `cas(${i.key}, ${JSON.stringify(i.expected)} -> ${i.value})`;
}
