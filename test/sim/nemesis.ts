/**
 * The fault injector of the simulator, driven by the per-seed fault mix: partitions (symmetric, one-way,
 * isolated leader, bridge), crashes and restarts, crashes right after granting a vote, pauses (a frozen
 * process: no ticks, messages held), leadership transfers, and membership cycles (remove a voter, wipe it,
 * add it back as a learner, promote it once caught up). Everything it does goes into the trace.
 */
import type { Message, NodeId } from "../../src/raft/types.ts";
import type { PartitionKind } from "./fault-mix.ts";
import type { SimNode } from "./sim-node.ts";
import type { SimRng } from "./sim-rng.ts";
import type { Simulation } from "./sim.ts";

type Plan =
  | { stage: "remove"; target: NodeId; nextTryTick: number }
  | { stage: "removed"; target: NodeId; readdAtTick: number }
  | { stage: "addLearner"; target: NodeId; nextTryTick: number }
  | { stage: "promote"; target: NodeId; nextTryTick: number };

/** See the file comment. Only the simulator calls it. */
export class Nemesis {
  private retired = new Set<NodeId>();
  private restartAtTick = new Map<NodeId, number>();
  private resumeAtTick = new Map<NodeId, number>();
  private voteCrashes: NodeId[] = [];
  private leaderCrashAtTick = new Map<NodeId, number>();
  private plan: Plan | undefined;
  private phase: "safety" | "liveness" = "safety";
  private partitioned = false;

  constructor(
    private readonly rng: SimRng,
    private readonly sim: Simulation,
  ) {}

  /** True while a node is removed from the cluster (wiped, not running). */
  isRetired(id: NodeId): boolean {
    return this.retired.has(id);
  }

  /** The leader with the highest term among running, unpaused nodes. */
  leader(): SimNode | undefined {
    let best: SimNode | undefined;
    let bestTerm = -1;
    for (const n of this.sim.nodes) {
      if (!n.core || n.paused) continue;
      const st = n.core.status();
      if (st.role === "leader" && st.term > bestTerm) {
        best = n;
        bestTerm = st.term;
      }
    }
    return best;
  }

  /** Called from the send hook when `id` grants a real vote: maybe crash it right after (forget-vote bait). */
  onVoteGranted(id: NodeId): void {
    if (this.phase === "safety" && this.rng.chance(this.sim.mix.crashAfterVotePerMille) && !this.voteCrashes.includes(id)) this.voteCrashes.push(id);
  }

  /** Called when `id` becomes leader: maybe crash it a few ticks later (leader churn). */
  onBecameLeader(id: NodeId): void {
    if (this.phase !== "safety" || !this.rng.chance(this.sim.mix.crashNewLeaderPerMille)) return;
    const at = this.sim.nowTick + this.rng.range(0, 2 * this.sim.mix.heartbeatTicks + 2);
    this.leaderCrashAtTick.set(id, at);
  }

  /** Called when leader `id` made a higher commit index durable: maybe crash it right then. */
  onLeaderCommitted(id: NodeId): void {
    if (this.phase === "safety" && this.rng.chance(this.sim.mix.crashAfterCommitPerMille) && !this.voteCrashes.includes(id)) this.voteCrashes.push(id);
  }

  /** Runs the crashes queued by {@link onVoteGranted}; called between deliveries and after ticks. */
  afterStep(): void {
    for (const id of this.voteCrashes.splice(0)) {
      const n = this.sim.node(id)!;
      if (!n.up) continue;
      this.sim.trace(`nemesis: crash ${id} right after it voted or committed`);
      this.sim.crashNode(n);
      this.restartAtTick.set(id, this.sim.nowTick + this.rng.range(1, 2));
    }
  }

  /** Messages held by nodes resumed this tick, to be delivered after the clients' turn. */
  readonly resumedHeld: Message[] = [];

  /** One tick of faults. */
  step(phase: "safety" | "liveness"): void {
    this.phase = phase;
    const now = this.sim.nowTick;
    const mix = this.sim.mix;
    for (const n of this.sim.nodes) {
      const at = this.restartAtTick.get(n.id);
      if (!n.up && !this.retired.has(n.id) && at !== undefined && at <= now) {
        this.restartAtTick.delete(n.id);
        this.sim.startNode(n);
      }
      const r = this.resumeAtTick.get(n.id);
      if (n.paused && r !== undefined && r <= now) this.resume(n);
    }
    this.stepPlan();
    if (phase === "liveness") return;
    for (const n of this.sim.nodes) {
      const at = this.leaderCrashAtTick.get(n.id);
      if (at === undefined || at > now) continue;
      this.leaderCrashAtTick.delete(n.id);
      if (!n.up || this.retired.has(n.id)) continue;
      this.sim.trace(`nemesis: crash ${n.id} soon after it became leader`);
      this.sim.crashNode(n);
      this.restartAtTick.set(n.id, now + this.rng.range(1, mix.maxDownTicks));
    }
    const rng = this.rng;
    if (rng.chance(mix.partitionChangePerMille)) {
      if (this.partitioned && rng.chance(500)) {
        this.sim.net.healAll();
        this.partitioned = false;
        this.sim.trace("nemesis: partition healed");
      } else this.partition(rng.pick(mix.partitionKinds));
    }
    if (rng.chance(mix.crashPerMille)) {
      const n = this.victim(500);
      if (n) {
        this.sim.trace(`nemesis: crash ${n.id}`);
        this.sim.crashNode(n);
        this.restartAtTick.set(n.id, now + rng.range(1, mix.maxDownTicks));
      }
    }
    if (rng.chance(mix.pausePerMille)) {
      const n = this.victim(700);
      if (n && !n.paused) {
        n.paused = true;
        this.resumeAtTick.set(n.id, now + rng.range(1, mix.pauseTicksMax));
        this.sim.trace(`nemesis: pause ${n.id} until tick ${this.resumeAtTick.get(n.id)}`);
      }
    }
    if (rng.chance(mix.transferPerMille)) {
      const l = this.leader();
      if (l) {
        const others = l.core!.status().confState.voters.filter((v) => v !== l.id);
        if (others.length > 0) {
          const to = rng.pick(others);
          this.sim.trace(`nemesis: ask ${l.id} to transfer leadership to ${to}`);
          this.tryCore(l, (c) => c.transferLeader(to));
        }
      }
    }
    if (!this.plan && rng.chance(mix.membershipPerMille)) this.startPlan();
  }

  /** A running, unpaused, non-retired node: the leader with probability leaderPerMille, else any. */
  private victim(leaderPerMille: number): SimNode | undefined {
    const l = this.leader();
    if (l && this.rng.chance(leaderPerMille)) return l;
    const up = this.sim.nodes.filter((n) => n.up && !n.paused && !this.retired.has(n.id));
    return up.length > 0 ? this.rng.pick(up) : undefined;
  }

  private resume(n: SimNode): void {
    this.resumeAtTick.delete(n.id);
    const held = n.resume();
    this.resumedHeld.push(...held);
    this.sim.trace(`nemesis: resume ${n.id} (${held.length} messages held)`);
  }

  private shuffled(ids: NodeId[]): NodeId[] {
    const a = [...ids];
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.rng.nextInt(i + 1);
      [a[i], a[j]] = [a[j], a[i]];
    }
    return a;
  }

  private cutBetween(a: NodeId[], b: NodeId[]): void {
    for (const x of a) for (const y of b) {
      this.sim.net.cut(x, y);
      this.sim.net.cut(y, x);
    }
  }

  private partition(kind: PartitionKind): void {
    const net = this.sim.net;
    const ids = this.sim.nodes.map((n) => n.id);
    net.healAll();
    this.partitioned = true;
    if (kind === "symmetric") {
      const s = this.shuffled(ids);
      const k = this.rng.range(1, Math.floor(ids.length / 2));
      this.cutBetween(s.slice(0, k), s.slice(k));
    } else if (kind === "asymmetric") {
      const pairs = this.rng.range(1, ids.length);
      for (let i = 0; i < pairs; i++) {
        const from = this.rng.pick(ids);
        const to = this.rng.pick(ids.filter((x) => x !== from));
        net.cut(from, to);
      }
    } else if (kind === "isolate-leader") {
      const l = this.leader()?.id ?? this.rng.pick(ids);
      this.cutBetween([l], ids.filter((x) => x !== l));
    } else {
      // bridge: two halves that only the bridge node connects.
      const s = this.shuffled(ids);
      const bridge = s[0];
      const rest = s.slice(1);
      const half = Math.floor(rest.length / 2);
      this.cutBetween(rest.slice(0, half), rest.slice(half));
      this.sim.trace(`nemesis: bridge through ${bridge}`);
    }
    this.sim.trace(`nemesis: partition ${kind}: cut ${net.describeCuts()}`);
  }

  /** Calls the core; refusals (not leader, dropped, invalid change) are expected and ignored. */
  private tryCore(n: SimNode, fn: (c: NonNullable<SimNode["core"]>) => unknown): boolean {
    try {
      n.withCore(fn);
      return true;
    } catch (err) {
      if (err instanceof Error && "code" in err) {
        this.sim.trace(`nemesis: ${n.id} refused: ${err.message}`);
        return false;
      }
      throw err;
    }
  }

  private startPlan(): void {
    const l = this.leader();
    if (!l) return;
    const st = l.core!.status();
    if (st.confState.votersOutgoing.length > 0 || st.confState.learners.length > 0 || st.confState.voters.length < 3) return;
    const candidates = st.confState.voters.filter((v) => v !== l.id);
    this.plan = { stage: "remove", target: this.rng.pick(candidates), nextTryTick: this.sim.nowTick };
    this.sim.trace(`nemesis: membership cycle for ${this.plan.target} begins`);
  }

  private stepPlan(): void {
    const p = this.plan;
    if (!p) return;
    const now = this.sim.nowTick;
    if (p.stage === "removed") {
      if (now >= p.readdAtTick || this.phase === "liveness") this.plan = { stage: "addLearner", target: p.target, nextTryTick: now };
      return;
    }
    const l = this.leader();
    if (!l) return;
    const st = l.core!.status();
    const cs = st.confState;
    const settled = cs.votersOutgoing.length === 0 && st.commitIndex === st.lastIndex;
    const target = this.sim.node(p.target)!;
    if (p.stage === "remove") {
      if (settled && !cs.voters.includes(p.target) && !cs.learners.includes(p.target)) {
        this.sim.crashNode(target);
        target.wipe();
        this.sim.forgetPositions(target.id);
        this.retired.add(target.id);
        this.restartAtTick.delete(target.id);
        this.resumeAtTick.delete(target.id);
        this.plan = { stage: "removed", target: p.target, readdAtTick: now + this.rng.range(10, 200) };
        this.sim.trace(`nemesis: ${p.target} removed and wiped`);
      } else if (now >= p.nextTryTick && cs.voters.includes(p.target) && p.target !== l.id) {
        p.nextTryTick = now + 20;
        this.sim.trace(`nemesis: propose remove ${p.target} at ${l.id}`);
        this.tryCore(l, (c) => c.proposeConfChange({ steps: [{ type: "remove", nodeId: p.target }] }));
      }
    } else if (p.stage === "addLearner") {
      if (cs.learners.includes(p.target)) {
        this.retired.delete(p.target);
        if (!target.up) this.sim.startNode(target);
        this.plan = { stage: "promote", target: p.target, nextTryTick: now };
      } else if (now >= p.nextTryTick && settled && !cs.voters.includes(p.target)) {
        p.nextTryTick = now + 20;
        this.sim.trace(`nemesis: propose addLearner ${p.target} at ${l.id}`);
        this.tryCore(l, (c) => c.proposeConfChange({ steps: [{ type: "addLearner", nodeId: p.target }] }));
      }
    } else {
      if (settled && cs.voters.includes(p.target)) {
        this.sim.trace(`nemesis: membership cycle for ${p.target} done`);
        this.plan = undefined;
        return;
      }
      const pr = st.progress?.[p.target];
      if (now >= p.nextTryTick && settled && cs.learners.includes(p.target) && pr && pr.matchIndex + 2 >= st.commitIndex) {
        p.nextTryTick = now + 20;
        this.sim.trace(`nemesis: propose promote ${p.target} at ${l.id}`);
        this.tryCore(l, (c) => c.proposeConfChange({ steps: [{ type: "promote", nodeId: p.target }] }));
      }
    }
  }

  /** Liveness phase: heal partitions, restart every member, resume every paused node. */
  healAll(): void {
    this.phase = "liveness";
    this.partitioned = false;
    this.voteCrashes = [];
    this.leaderCrashAtTick.clear();
    for (const n of this.sim.nodes) {
      if (this.retired.has(n.id)) continue;
      if (!n.up) this.sim.startNode(n);
      if (n.paused) this.resume(n);
    }
    this.restartAtTick.clear();
  }
}
