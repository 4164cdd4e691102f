/**
 * The deterministic simulator: one seed -> one whole run (fault mix, cluster, network, crashes, membership
 * changes, client workload), reproducible byte for byte on Node, Bun and Deno. Time is virtual (ticks);
 * randomness comes only from the seed. A run is a safety phase with faults, then a liveness phase with
 * every fault healed in which a leader must be elected and every pending operation must complete.
 * Invariants (checks.ts) are checked after every Ready and every tick; the client history is checked for
 * linearizability at the end.
 *
 * Per tick: nemesis -> clients -> message delivery -> every node ticks -> checks. With asynchronous
 * persist (most seeds; `persist` option) a node's fsync completes as a timed event ordered among message
 * deliveries (sim-node.ts), so messages, proposals and ticks reach a node while its Ready is in flight.
 */
import { MemoryStorage } from "../../src/raft/memory-storage.ts";
import { RaftNode } from "../../src/raft/raw-node.ts";
import { createRng } from "../../src/raft/rng.ts";
import type { Message, NodeId, RaftBug, Ready } from "../../src/raft/types.ts";
import { checkOperations } from "../lin/checker.ts";
import { kvModel, type KvOperation } from "../lin/kv-model.ts";
import * as checks from "./checks.ts";
import { describeFaultMix, drawFaultMix, drawPersistMix, type FaultMix } from "./fault-mix.ts";
import { Nemesis } from "./nemesis.ts";
import { HEALED, SimNetwork } from "./network.ts";
import { RegisterMachine } from "./register-machine.ts";
import { SimNode, type CoreFactory, type CrashKeeps, type DriverHooks } from "./sim-node.ts";
import { SimRng } from "./sim-rng.ts";
import { Workload, type WorkloadEnv } from "./workload.ts";

/** Options of one run. */
export interface SimOptions {
  seed: number;
  /** Cluster size; drawn from the seed (3, 5, sometimes 7) when absent. */
  nodes?: number;
  /** Safety-phase length in ticks; drawn (2000..4000) when absent. */
  ticks?: number;
  /** Deliberately wrong rule turned on in every node. */
  bug?: RaftBug;
  /** Lost messages are not reported to the sender (UDP-like); default false (HTTP/2-like). */
  silentLoss?: boolean;
  /** Keep the whole event trace (else only the fault mix and the outcome). */
  trace?: boolean;
  /** Builds the Raft core (default: src/raft/raw-node.ts RaftNode). */
  coreFactory?: CoreFactory;
  /** Step bound of the linearizability search (a timeout counts as a violation). Default 2e6. */
  linMaxSteps?: number;
  /** How nodes persist a Ready (see fault-mix.ts PersistMix); drawn per seed (3 in 4 async) when absent. */
  persist?: "sync" | "async";
  /** RaftConfig.maxReadysInFlight of every node (see fault-mix.ts PersistMix); drawn per seed when absent. */
  readysInFlight?: number;
}

/** Outcome of one run. */
export interface SimResult {
  seed: number;
  mix: FaultMix;
  violation?: checks.Violation & { tick: number };
  /** The whole trace when `trace` was set; otherwise empty. */
  trace: string[];
  ticks: number;
  /** The client history given to the linearizability checker. */
  history: KvOperation[];
  opsCompleted: number;
  opsUnknown: number;
  stats: {
    messagesSent: number;
    messagesDelivered: number;
    crashes: number;
    leaders: number;
    snapshotsInstalled: number;
    membershipChanges: number;
    priorTermCommits: number;
    /** Asynchronous persist: fsyncs completed, and crashes that hit one in flight. */
    persistsCompleted: number;
    crashesMidPersist: number;
    /** Pipelined persist: Readys written while an earlier one's fsync was in flight, and crashes with 2+ out. */
    readysPipelined: number;
    crashesPipelined: number;
  };
}

/** The real core: src/raft/raw-node.ts. */
export const defaultCoreFactory: CoreFactory = (config, storage, rng) => new RaftNode(config, storage, rng);

/** Thrown inside a run to stop it at the first violation. */
class ViolationStop extends Error {
  constructor(readonly v: checks.Violation) {
    super(`${v.invariant}: ${v.detail}`);
  }
}

/** One simulation; use {@link runSimulation}. Public fields are read by the nemesis. */
export class Simulation implements WorkloadEnv {
  nowTick = 0;
  private seq = 0;
  readonly mix: FaultMix;
  readonly net: SimNetwork;
  readonly nodes: SimNode[] = [];
  readonly ledger = new checks.Ledger();
  readonly workload: Workload;
  readonly nemesis: Nemesis;
  readonly traceLines: string[] = [];
  readonly stats = { crashes: 0, leaders: 0, snapshotsInstalled: 0, membershipChanges: 0, priorTermCommits: 0, persistsCompleted: 0, crashesMidPersist: 0, readysPipelined: 0, crashesPipelined: 0 };
  private coreSeeds: SimRng;
  /** Fsync delays and what a crash mid-fsync keeps (its own stream: the other streams draw as before). */
  private persistRng: SimRng;
  private positions = new Map<NodeId, { commit: number; applied: number; incarnation: number }>();
  /**
   * What a real transport would tell the sender, handled between deliveries: whether an InstallSnapshot got
   * through (reportSnapshot) and that a peer could not be reached (reportUnreachable, for messages to a
   * down node, over a cut link, or lost on the wire unless loss is silent).
   */
  private transportReports: Array<{ from: NodeId; to: NodeId; kind: "snapshotOk" | "snapshotFailed" | "unreachable" }> = [];
  /** op id -> when (event clock) and how it was first applied by any node: ground truth for unknown outcomes. */
  readonly firstApplied = new Map<string, { at: number; ok: boolean }>();
  /** Nodes that granted a vote this step and are to crash right after (nemesis "crash after vote"). */
  readonly crashAfterVote: NodeId[] = [];

  constructor(readonly options: SimOptions) {
    const root = new SimRng(options.seed);
    this.mix = drawFaultMix(root.fork(1), { nodes: options.nodes, ticks: options.ticks, bug: options.bug });
    this.net = new SimNetwork(root.fork(2), { ...this.mix.network, silentLoss: options.silentLoss === true || this.mix.network.silentLoss === true });
    this.coreSeeds = root.fork(5);
    const ids: NodeId[] = [];
    for (let i = 1; i <= this.mix.nodes; i++) ids.push(`n${i}`);
    const voters = { voters: ids, votersOutgoing: [], learners: [] };
    const settings = {
      electionTicks: this.mix.electionTicks,
      heartbeatTicks: this.mix.heartbeatTicks,
      maxPayloadEntries: this.mix.maxPayloadEntries,
      maxInflight: this.mix.maxInflight,
      maxInflightBytes: this.mix.maxInflightBytes,
      bugs: new Set<RaftBug>(options.bug ? [options.bug] : []),
    };
    const policy = { snapshotEveryEntries: this.mix.snapshotEveryEntries, keepTailEntries: this.mix.keepTailEntries };
    this.workload = new Workload(root.fork(3), this.mix.workload, ids);
    this.nemesis = new Nemesis(root.fork(4), this);
    // Forked last, so the streams above are the ones every seed had before asynchronous persist existed.
    this.persistRng = root.fork(6);
    this.mix.persist = drawPersistMix(this.persistRng, root.fork(7), options.persist, options.readysInFlight);
    const hooks = this.hooks();
    const nodeSettings = { ...settings, maxReadysInFlight: this.mix.persist.mode === "async" ? this.mix.persist.readysInFlight : 1 };
    for (const id of ids) {
      this.nodes.push(new SimNode(id, new MemoryStorage({ confState: voters }), new RegisterMachine(voters), nodeSettings, policy, hooks, options.coreFactory ?? defaultCoreFactory));
    }
    this.trace(`seed ${options.seed}${options.bug ? ` bug=${options.bug}` : ""}${options.silentLoss ? " silent-loss" : ""}`);
    for (const line of describeFaultMix(this.mix).split("\n")) this.trace(line);
    for (const n of this.nodes) this.startNode(n);
  }

  // WorkloadEnv
  clock(): number {
    return ++this.seq;
  }
  node(id: NodeId): SimNode | undefined {
    return this.nodes.find((n) => n.id === id);
  }
  upNodeIds(): NodeId[] {
    return this.nodes.filter((n) => n.up && !this.nemesis.isRetired(n.id)).map((n) => n.id);
  }
  trace(line: string): void {
    if (this.options.trace) this.traceLines.push(`t=${this.nowTick} ${line}`);
  }

  /** Starts or restarts a node with a fresh core rng drawn from the seed. */
  startNode(n: SimNode): void {
    n.start(createRng(this.coreSeeds.nextU32()));
    this.trace(`${n.id} starts (incarnation ${n.incarnation}, applied ${n.machine.appliedIndex}, log ${n.storage.firstIndex()}..${n.storage.lastIndex()})`);
  }

  /**
   * Crashes a node: the core, its held messages and its client requests are lost, and of a Ready whose
   * fsync is in flight a drawn prefix of its writes (see CrashKeeps). The applied index may then go back
   * to the durable one: the per-tick check restarts from it.
   */
  crashNode(n: SimNode): void {
    if (!n.up) return;
    this.stats.crashes++;
    let keeps: CrashKeeps = "nothing";
    let cut = 0;
    const inFlight = n.pending.length;
    if (inFlight > 0) {
      this.stats.crashesMidPersist++;
      const r = this.persistRng.nextInt(1000);
      const p = this.mix.persist;
      keeps = r < p.crashKeepsAllPerMille ? "all" : r < p.crashKeepsAllPerMille + p.crashKeepsWritePerMille ? "write" : "nothing";
      // Where the kept prefix of the pipelined writes ends (drawn only with more than one, so seeds with
      // one Ready in flight draw as before).
      if (inFlight > 1) {
        this.stats.crashesPipelined++;
        cut = this.persistRng.nextInt(inFlight);
      }
    }
    const midPersist = inFlight > 0;
    n.crash(keeps, cut);
    this.workload.onCrash(n, this);
    const pos = this.positions.get(n.id);
    if (pos && n.machine.appliedIndex < pos.applied) pos.applied = n.machine.appliedIndex;
    const which = inFlight > 1 ? `, of ${inFlight} Readys in flight the first ${cut} and of the next ` : ", keeping ";
    this.trace(`${n.id} crashes${midPersist ? ` with an fsync in flight${which}${keeps === "nothing" ? "nothing" : keeps === "write" ? "its entries and hard state, not its applies" : "all"}` : ""}`);
  }

  private hooks(): DriverHooks {
    return {
      send: (m) => {
        if (m.type === "requestVoteResponse" && m.granted && !m.preVote) this.nemesis.onVoteGranted(m.from);
        this.net.send(m, this.nowTick);
      },
      persisted: (node, rd) => this.afterPersist(node, rd),
      applied: (node, entry, result) => {
        this.fail(checks.checkStateMachineSafety(this.ledger, node.id, entry));
        if (entry.type === "confChange") {
          this.stats.membershipChanges++;
          this.trace(`${node.id} applies conf change ${JSON.stringify(entry.confChange)} at ${entry.index}`);
        }
        if (result && !this.firstApplied.has(result.opId)) this.firstApplied.set(result.opId, { at: this.clock(), ok: result.ok });
        this.workload.onApplied(node, entry, result, this);
      },
      restoredSnapshot: (node, snap) => {
        this.stats.snapshotsInstalled++;
        this.trace(`${node.id} installs snapshot (index ${snap.meta.index}, term ${snap.meta.term})`);
        this.fail(checks.checkSnapshotAgrees(this.ledger, node.id, snap.meta.index, snap.meta.term));
        this.workload.onSnapshot(node, snap.meta.index, this);
      },
      readReady: (node, id) => this.workload.onReadReady(node, id, this),
      readDropped: (node, id) => this.workload.onReadDropped(node, id, this),
      schedulePersist:
        this.mix.persist.mode === "async"
          ? (node) => {
              const dueTick = this.nowTick + this.persistRng.range(0, this.mix.persist.fsyncTicksMax);
              if (this.options.trace) this.trace(`${node.id} fsync in flight until t=${dueTick}`);
              return { dueTick, seq: this.net.reserveSeq() };
            }
          : undefined,
    };
  }

  private afterPersist(node: SimNode, rd: Ready): void {
    if (node.pending.length > 0) this.stats.readysPipelined++;
    const st = node.core!.status();
    if (rd.softState) this.trace(`${node.id} is ${rd.softState.role} in term ${st.term} (leader ${rd.softState.leaderId || "-"})`);
    if (rd.softState?.role === "leader") {
      this.stats.leaders++;
      this.nemesis.onBecameLeader(node.id);
      this.fail(checks.checkElectionSafety(this.ledger, st.term, node.id));
      this.fail(checks.checkLeaderCompleteness(this.ledger, node, st.term));
    }
    if (rd.hardState) {
      this.fail(checks.recordCommitted(this.ledger, node, rd.hardState.commit, rd.hardState.term));
      if (st.role === "leader" && rd.hardState.commit > (this.positions.get(node.id)?.commit ?? 0)) {
        // A correct leader only moves its commit index onto an entry of its own term (Raft paper §5.4.2).
        if (rd.hardState.commit <= node.storage.lastIndex() && rd.hardState.commit >= node.storage.firstIndex() && node.storage.term(rd.hardState.commit) < st.term) {
          this.stats.priorTermCommits++;
          this.trace(`${node.id} (leader, term ${st.term}) committed index ${rd.hardState.commit} of term ${node.storage.term(rd.hardState.commit)}`);
        }
        this.nemesis.onLeaderCommitted(node.id);
      }
    }
  }

  /** Records a violation (the first one stops the run). */
  fail(v: checks.Violation | undefined): void {
    if (v) throw new ViolationStop(v);
  }

  /**
   * Delivers everything due now, plus the snapshot-send reports, and completes the fsyncs due now, in
   * (tick, sequence) order with the messages. Bounded per tick.
   */
  deliverDue(): void {
    for (let n = 0; ; n++) {
      if (n > 200_000) throw new Error("simulator: more than 200000 deliveries in one tick");
      this.flushTransportReports();
      const head = this.net.peekDue(this.nowTick);
      const fsynced = this.persistDue();
      const due = fsynced?.pending[0];
      if (fsynced && due && (!head || due.dueTick < head.tick || (due.dueTick === head.tick && due.seq < head.seq))) {
        this.stats.persistsCompleted++;
        if (this.options.trace) this.trace(`${fsynced.id} fsync done`);
        fsynced.completePersist();
        this.nemesis.afterStep();
        continue;
      }
      const m = this.net.next(this.nowTick);
      if (!m) break;
      this.deliver(m);
      this.nemesis.afterStep();
    }
    this.flushTransportReports();
  }

  /**
   * The running node whose fsync completes first among those due now, or undefined. A paused node's
   * completion waits for its resume (the fsync finishes on another thread, its callback cannot run).
   */
  private persistDue(): SimNode | undefined {
    let best: SimNode | undefined;
    for (const n of this.nodes) {
      const p = n.pending[0];
      if (!p || !n.up || n.paused || p.dueTick > this.nowTick) continue;
      const b = best?.pending[0];
      if (!b || p.dueTick < b.dueTick || (p.dueTick === b.dueTick && p.seq < b.seq)) best = n;
    }
    return best;
  }

  /** Delivers one message to its target if it is up (a down node loses it). */
  deliver(m: Message): void {
    const to = this.node(m.to);
    if (!to || !to.up) {
      this.transportReports.push({ from: m.from, to: m.to, kind: m.type === "installSnapshot" ? "snapshotFailed" : "unreachable" });
      return;
    }
    if (this.options.trace) this.trace(`${m.from}->${m.to} ${describeMessage(m)}`);
    to.deliver(m);
    if (m.type === "installSnapshot") this.transportReports.push({ from: m.from, to: m.to, kind: "snapshotOk" });
  }

  private flushTransportReports(): void {
    for (const m of this.net.droppedSnapshots.splice(0)) this.transportReports.push({ from: m.from, to: m.to, kind: "snapshotFailed" });
    for (const m of this.net.cutMessages.splice(0)) this.transportReports.push({ from: m.from, to: m.to, kind: "unreachable" });
    for (const m of this.net.lostMessages.splice(0)) this.transportReports.push({ from: m.from, to: m.to, kind: "unreachable" });
    for (const r of this.transportReports.splice(0)) {
      const from = this.node(r.from);
      if (!from || !from.up || from.paused) continue;
      if (r.kind === "unreachable") from.withCore((c) => c.reportUnreachable(r.to));
      else from.withCore((c) => c.reportSnapshot(r.to, r.kind === "snapshotOk"));
    }
  }

  /** Per-tick checks over every node: positions, applied <= commit, log matching over durable logs. */
  checkTick(): void {
    for (const n of this.nodes) {
      if (!n.core) continue;
      const st = n.core.status();
      const prev = this.positions.get(n.id);
      if (prev) {
        const change = { id: n.id, commitBefore: prev.commit, commitAfter: st.commitIndex, appliedBefore: prev.applied, appliedAfter: st.appliedIndex, restarted: prev.incarnation !== n.incarnation };
        this.fail(checks.checkCommitMonotonic(change));
        this.fail(checks.checkAppliedMonotonic(change));
      }
      this.fail(checks.checkAppliedLeCommit(n.id, st.appliedIndex, st.commitIndex));
      this.positions.set(n.id, { commit: st.commitIndex, applied: st.appliedIndex, incarnation: n.incarnation });
    }
    for (let i = 0; i < this.nodes.length; i++) {
      for (let j = i + 1; j < this.nodes.length; j++) this.fail(checks.checkLogMatching(this.nodes[i], this.nodes[j]));
    }
  }

  /** A wiped node starts over from index 0: its positions are no longer comparable. */
  forgetPositions(id: NodeId): void {
    this.positions.delete(id);
  }

  /** One tick: nemesis, clients, delivery, node ticks, checks. */
  step(phase: "safety" | "liveness"): void {
    this.nemesis.step(phase);
    this.workload.step(this);
    // A resumed node sees its clients' requests first, then what arrived while it was frozen.
    for (const m of this.nemesis.resumedHeld.splice(0)) this.deliver(m);
    this.deliverDue();
    for (const n of this.nodes) n.tick();
    this.deliverDue();
    this.nemesis.afterStep();
    this.checkTick();
    this.nowTick++;
  }

  /** Heals every fault and restarts every member: the start of the liveness phase. */
  healAll(): void {
    this.net.healAll();
    this.net.faults = { ...HEALED };
    this.nemesis.healAll();
    // New operations stop half way through the phase, so each one gets at least half of it to complete.
    this.workload.enterLiveness(this.nowTick, Math.floor(this.mix.livenessTicks / 2));
    this.trace("liveness phase: all faults healed, all members up");
  }
}

/** A compact one-line rendering of a message for the trace. */
export function describeMessage(m: Message): string {
  switch (m.type) {
    case "appendEntries":
      return `appendEntries term=${m.term} prev=(${m.prevLogIndex},${m.prevLogTerm}) entries=${m.entries.length ? `${m.entries[0].index}..${m.entries[m.entries.length - 1].index}` : "-"} commit=${m.commit}`;
    case "appendEntriesResponse":
      return `appendEntriesResponse term=${m.term} ${m.success ? `ok match=${m.matchIndex}` : `reject ${m.rejectIndex} hint=(${m.conflictIndex},${m.conflictTerm})`}`;
    case "requestVote":
      return `requestVote${m.preVote ? "(pre)" : ""} term=${m.term} last=(${m.lastLogIndex},${m.lastLogTerm})${m.leadershipTransfer ? " transfer" : ""}`;
    case "requestVoteResponse":
      return `requestVoteResponse${m.preVote ? "(pre)" : ""} term=${m.term} ${m.granted ? "granted" : "rejected"}`;
    case "heartbeat":
      return `heartbeat term=${m.term} commit=${m.commit} readSeq=${m.readSeq}`;
    case "heartbeatResponse":
      return `heartbeatResponse term=${m.term} readSeq=${m.readSeq}`;
    case "installSnapshot":
      return `installSnapshot term=${m.term} at=(${m.snapshot.meta.index},${m.snapshot.meta.term})`;
    case "timeoutNow":
      return `timeoutNow term=${m.term}`;
    case "readIndex":
      return `readIndex term=${m.term} ids=${m.requestIds.join(",")}`;
    case "readIndexResponse":
      return `readIndexResponse term=${m.term} index=${m.index} ids=${m.requestIds.join(",")}`;
  }
}

/**
 * The history with every unknown-outcome write replaced by its real fate: completed at the time it was
 * first applied (with the applied result), or removed when it never applied.
 */
export function resolveUnknowns(
  history: KvOperation[],
  opIds: ReadonlyMap<KvOperation, string>,
  firstApplied: ReadonlyMap<string, { at: number; ok: boolean }>,
): KvOperation[] {
  const out: KvOperation[] = [];
  for (const op of history) {
    if (op.ret !== undefined) {
      out.push(op);
      continue;
    }
    const id = opIds.get(op);
    const applied = id === undefined ? undefined : firstApplied.get(id);
    if (!applied) continue;
    out.push({ ...op, ret: Math.max(applied.at, op.call), output: op.input.kind === "cas" ? { ok: applied.ok } : {} });
  }
  return out;
}

/** Runs one seed to completion (or to its first violation). Never throws for a protocol violation. */
export function runSimulation(options: SimOptions): SimResult {
  const sim = new Simulation(options);
  let violation: SimResult["violation"];
  const stop = (v: checks.Violation) => {
    violation = { ...v, tick: sim.nowTick };
    sim.trace(`VIOLATION ${v.invariant}: ${v.detail}`);
  };
  try {
    while (sim.nowTick < sim.mix.safetyTicks) sim.step("safety");
    sim.healAll();
    const end = sim.nowTick + sim.mix.livenessTicks;
    const quietAt = end - Math.floor(sim.mix.livenessTicks / 2); // no new ops in the second half
    while (sim.nowTick < end) {
      sim.workload.allowNewOps = sim.nowTick < quietAt;
      sim.step("liveness");
    }
    const failures = sim.workload.livenessFailures.length > 0 ? sim.workload.livenessFailures : sim.workload.pending(sim.nowTick);
    const leaders = sim.nodes.filter((n) => n.core && n.core.status().role === "leader");
    if (leaders.length === 0) failures.unshift(`no leader ${sim.mix.livenessTicks} ticks after healing`);
    if (failures.length > 0) {
      const l = sim.nemesis.leader()?.core?.status();
      const progress = l?.progress
        ? Object.keys(l.progress)
            .sort()
            .map((id) => {
              const p = l.progress![id];
              return `${id}:${p.state} match=${p.matchIndex} next=${p.nextIndex} inflight=${p.inflight}`;
            })
            .join(", ")
        : "";
      const where = l ? `; leader ${l.id} term ${l.term} commit ${l.commitIndex} last ${l.lastIndex} progress [${progress}]` : "";
      stop({ invariant: "liveness", detail: failures[0] + (failures.length > 1 ? ` (and ${failures.length - 1} more)` : "") + where });
    }
  } catch (err) {
    if (err instanceof ViolationStop) stop(err.v);
    else stop({ invariant: "core-error", detail: `the core or driver threw: ${err instanceof Error ? err.stack ?? err.message : String(err)}` });
  }
  const history = sim.workload.history;
  if (!violation) {
    const maxSteps = options.linMaxSteps ?? 2_000_000;
    let lin = checkOperations(kvModel, history, { maxSteps: Math.ceil(maxSteps / 4) });
    if (lin.verdict === "unknown") {
      // Many unknown-outcome writes can make the search explode. The simulator knows their fate: an
      // attempt took effect iff some node applied it, no later than the first such apply; one that never
      // applied never took effect (or only after everything else). That history is checked instead.
      sim.trace(`linearizability: search too large with unknown outcomes (${lin.message}); checking with their fates resolved`);
      lin = checkOperations(kvModel, resolveUnknowns(history, sim.workload.unknownOpIds, sim.firstApplied), { maxSteps });
    }
    if (lin.verdict !== "ok") stop({ invariant: "linearizability", detail: lin.verdict === "unknown" ? `checker timeout: ${lin.message}` : lin.message });
  }
  return {
    seed: options.seed,
    mix: sim.mix,
    violation,
    trace: sim.traceLines,
    ticks: sim.nowTick,
    history,
    opsCompleted: history.filter((h) => h.ret !== undefined).length,
    opsUnknown: history.filter((h) => h.ret === undefined).length,
    stats: { messagesSent: sim.net.stats.sent, messagesDelivered: sim.net.stats.delivered, ...sim.stats },
  };
}
