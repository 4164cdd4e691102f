/**
 * The per-seed configuration of a run (swarm testing, as TigerBeetle's VOPR does): cluster size, timing,
 * snapshot policy, workload and which faults are on and how often. Drawn from the seed, printed at the
 * start of a run so a failure can be understood, and biased when a `--bug` is on so that the faults that
 * expose that bug are frequent.
 */
import type { RaftBug } from "../../src/raft/types.ts";
import type { NetworkFaults } from "./network.ts";
import type { SimRng } from "./sim-rng.ts";
import type { WorkloadMix } from "./workload.ts";

/** Kinds of partition the nemesis may create. */
export type PartitionKind = "symmetric" | "asymmetric" | "isolate-leader" | "bridge";

/** Everything randomized about a run. Ticks are simulated ticks (50 ms each when speed is reported). */
export interface FaultMix {
  nodes: number;
  safetyTicks: number;
  livenessTicks: number;
  electionTicks: number;
  heartbeatTicks: number;
  maxPayloadEntries: number;
  maxInflight: number;
  snapshotEveryEntries: number;
  keepTailEntries: number;
  network: NetworkFaults;
  /** Kinds enabled for this seed (may be empty). */
  partitionKinds: PartitionKind[];
  /** Chance per tick of changing the partition (to a new one or healed). */
  partitionChangePerMille: number;
  /** Chance per tick of crashing one node; it restarts after [1, maxDownTicks]. */
  crashPerMille: number;
  maxDownTicks: number;
  /** Chance that a node which just granted a (real) vote crashes right then, restarting soon after. */
  crashAfterVotePerMille: number;
  /** Chance per tick of pausing one node (leader more often) for [1, pauseTicksMax]. */
  pausePerMille: number;
  pauseTicksMax: number;
  /** Chance per tick of starting a membership change cycle (remove, re-add as learner, promote). */
  membershipPerMille: number;
  /** Chance per tick of asking the leader to transfer leadership. */
  transferPerMille: number;
  workload: WorkloadMix;
}

/** Options that override the draw (CLI flags). */
export interface MixOverrides {
  nodes?: number;
  ticks?: number;
  bug?: RaftBug;
}

/** Draws a fault mix from `rng`; see the file comment. */
export function drawFaultMix(rng: SimRng, o: MixOverrides = {}): FaultMix {
  const nodes = o.nodes ?? (rng.chance(100) ? 7 : rng.chance(500) ? 5 : 3);
  const electionTicks = rng.range(5, 10);
  const heartbeatTicks = rng.range(1, Math.max(1, Math.floor(electionTicks / 3)));
  const delayTicksMax = rng.pick([0, 1, 1, 2, 3]);
  const network: NetworkFaults = {
    lossPerMille: rng.pick([0, 0, 10, 50, 150]),
    duplicatePerMille: rng.pick([0, 0, 20, 100]),
    delayTicksMin: 0,
    delayTicksMax,
    longDelayPerMille: rng.pick([0, 0, 10, 50]),
    longDelayTicksMax: rng.range(2, 3 * electionTicks),
  };
  const allKinds: PartitionKind[] = ["symmetric", "asymmetric", "isolate-leader", "bridge"];
  const partitionKinds = allKinds.filter(() => rng.chance(500));
  const mix: FaultMix = {
    nodes,
    safetyTicks: o.ticks ?? rng.range(2000, 4000),
    livenessTicks: 40 * electionTicks + 200,
    electionTicks,
    heartbeatTicks,
    maxPayloadEntries: rng.pick([1, 3, 100]),
    maxInflight: rng.pick([1, 4, 64]),
    snapshotEveryEntries: rng.range(20, 50),
    keepTailEntries: rng.range(0, 5),
    network,
    partitionKinds,
    partitionChangePerMille: partitionKinds.length === 0 ? 0 : rng.pick([5, 10, 30]),
    crashPerMille: rng.pick([0, 2, 5, 15]),
    maxDownTicks: rng.range(5, 8 * electionTicks),
    crashAfterVotePerMille: rng.pick([0, 0, 100, 300]),
    pausePerMille: rng.pick([0, 0, 3, 10]),
    pauseTicksMax: rng.range(2, 6 * electionTicks),
    membershipPerMille: rng.pick([0, 0, 2, 5]),
    transferPerMille: rng.pick([0, 0, 2, 10]),
    workload: {
      clients: rng.range(2, 6),
      keys: ["a", "b", "c"].slice(0, rng.range(1, 3)),
      startPerMille: rng.pick([100, 300, 700]),
      getPerMille: rng.range(250, 500),
      casPerMille: rng.range(100, 300),
      opTimeoutTicks: rng.range(10, 40) * 3,
    },
  };
  // Each bug needs its own trigger often enough to be seen within the seed budget.
  if (o.bug === "forget-vote") {
    mix.crashAfterVotePerMille = 700;
    mix.network.longDelayPerMille = Math.max(mix.network.longDelayPerMille, 100);
    mix.partitionKinds = mix.partitionKinds.length ? mix.partitionKinds : ["symmetric"];
    mix.partitionChangePerMille = Math.max(mix.partitionChangePerMille, 20);
  } else if (o.bug === "stale-read") {
    mix.pausePerMille = 20;
    mix.pauseTicksMax = 6 * electionTicks;
    mix.workload.getPerMille = 500;
    mix.workload.startPerMille = 700;
    mix.partitionKinds = [...new Set<PartitionKind>([...mix.partitionKinds, "isolate-leader"])];
    mix.partitionChangePerMille = Math.max(mix.partitionChangePerMille, 20);
  } else if (o.bug === "commit-prior-term") {
    mix.crashPerMille = Math.max(mix.crashPerMille, 15);
    mix.partitionKinds = [...new Set<PartitionKind>([...mix.partitionKinds, "isolate-leader", "symmetric"])];
    mix.partitionChangePerMille = Math.max(mix.partitionChangePerMille, 30);
    mix.workload.startPerMille = 700;
  }
  return mix;
}

/** A multi-line human description of the mix, printed at the start of a run. */
export function describeFaultMix(m: FaultMix): string {
  const n = m.network;
  const w = m.workload;
  return [
    `nodes=${m.nodes} safetyTicks=${m.safetyTicks} livenessTicks=${m.livenessTicks} electionTicks=${m.electionTicks} heartbeatTicks=${m.heartbeatTicks}`,
    `maxPayloadEntries=${m.maxPayloadEntries} maxInflight=${m.maxInflight} snapshotEveryEntries=${m.snapshotEveryEntries} keepTailEntries=${m.keepTailEntries}`,
    `network: loss=${n.lossPerMille}‰ dup=${n.duplicatePerMille}‰ delay=${n.delayTicksMin}..${n.delayTicksMax} ticks longDelay=${n.longDelayPerMille}‰ up to ${n.longDelayTicksMax} ticks`,
    `partitions=[${m.partitionKinds.join(",")}] change=${m.partitionChangePerMille}‰/tick crash=${m.crashPerMille}‰/tick down<=${m.maxDownTicks} crashAfterVote=${m.crashAfterVotePerMille}‰ pause=${m.pausePerMille}‰/tick <=${m.pauseTicksMax} membership=${m.membershipPerMille}‰ transfer=${m.transferPerMille}‰`,
    `workload: clients=${w.clients} keys=${w.keys.join(",")} start=${w.startPerMille}‰ get=${w.getPerMille}‰ cas=${w.casPerMille}‰ opTimeout=${w.opTimeoutTicks} ticks`,
  ].join("\n");
}
