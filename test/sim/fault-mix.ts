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
  /**
   * RaftConfig.maxInflightBytes (entry data bytes). Not drawn (an extra draw would change every later seed's
   * mix): derived from keepTailEntries, so about half the seeds run a bound of 160 bytes (two or three
   * register commands of 55-80 bytes in flight) and the byte bound, not only the count, pauses followers.
   */
  maxInflightBytes: number;
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
  /** Chance that a node which just became leader crashes a few ticks later (leader churn, figure-8 bait). */
  crashNewLeaderPerMille: number;
  /** Chance that a leader crashes right after its commit index advances (before telling followers). */
  crashAfterCommitPerMille: number;
  /** Chance per tick of pausing one node (leader more often) for [1, pauseTicksMax]. */
  pausePerMille: number;
  pauseTicksMax: number;
  /** Chance per tick of starting a membership change cycle (remove, re-add as learner, promote). */
  membershipPerMille: number;
  /** Chance per tick of asking the leader to transfer leadership. */
  transferPerMille: number;
  workload: WorkloadMix;
  persist: PersistMix;
}

/**
 * How nodes persist a Ready. `async` is src/server/node.ts with its WAL syncer (docs/storage.md): the
 * fsync completes after a delay while the node keeps stepping; `sync` is the node without one (every
 * Ready durable before anything else happens).
 */
export interface PersistMix {
  mode: "sync" | "async";
  /** Each fsync completes after [0, fsyncTicksMax] ticks (0: after the messages already due this tick). */
  fsyncTicksMax: number;
  /** Of crashes with an fsync in flight, how many per mille keep that Ready's entries and hard state... */
  crashKeepsWritePerMille: number;
  /** ...and how many keep its applies too (the rest keep nothing of it). */
  crashKeepsAllPerMille: number;
  /**
   * RaftConfig.maxReadysInFlight of every node: with more than 1 a node writes the next Ready while earlier
   * fsyncs are in flight (src/server/node.ts's pipelined persist). Only async persist ever has two out.
   */
  readysInFlight: number;
}

/** Options that override the draw (CLI flags). */
export interface MixOverrides {
  nodes?: number;
  ticks?: number;
  bug?: RaftBug;
  persist?: "sync" | "async";
}

/**
 * Draws the persist mode from its own stream (`rng`), so adding it did not reshuffle the other knobs of a
 * seed: three seeds in four run asynchronous persist, the node's default with its ports.
 */
export function drawPersistMix(rng: SimRng, depthRng: SimRng, mode?: "sync" | "async", readysInFlight?: number): PersistMix {
  const drawn = rng.chance(750) ? "async" : "sync";
  // The depth has a stream of its own, so `rng` (which later draws fsync delays) is what each seed drew
  // before pipelined persist existed. Half the seeds run the node's depth, the rest 1 or 2.
  const drawnDepth = depthRng.pick([1, 2, 4, 4]);
  return {
    mode: mode ?? drawn,
    fsyncTicksMax: rng.pick([0, 1, 1, 2, 4]),
    crashKeepsWritePerMille: rng.pick([0, 200, 400]),
    crashKeepsAllPerMille: rng.pick([0, 200]),
    readysInFlight: readysInFlight ?? drawnDepth,
  };
}

/**
 * Draws a fault mix from `rng`; see the file comment. `persist` is left synchronous (or `o.persist` with
 * no delay): the simulator replaces it with {@link drawPersistMix} from a stream of its own.
 */
export function drawFaultMix(rng: SimRng, o: MixOverrides = {}): FaultMix {
  // Draw every knob even when overridden, so an override does not shift the rest of the mix.
  const drawnNodes = rng.chance(100) ? 7 : rng.chance(500) ? 5 : 3;
  const nodes = o.nodes ?? drawnNodes;
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
  const drawnTicks = rng.range(2000, 4000);
  const allKinds: PartitionKind[] = ["symmetric", "asymmetric", "isolate-leader", "bridge"];
  const partitionKinds = allKinds.filter(() => rng.chance(500));
  const mix: FaultMix = {
    nodes,
    safetyTicks: drawnTicks,
    livenessTicks: 40 * electionTicks + 200,
    electionTicks,
    heartbeatTicks,
    maxPayloadEntries: rng.pick([1, 3, 100]),
    maxInflight: rng.pick([1, 4, 64]),
    snapshotEveryEntries: rng.range(20, 50),
    keepTailEntries: rng.range(0, 5),
    maxInflightBytes: 0,
    network,
    partitionKinds,
    partitionChangePerMille: partitionKinds.length === 0 ? 0 : rng.pick([5, 10, 30]),
    crashPerMille: rng.pick([0, 2, 5, 15]),
    maxDownTicks: rng.range(5, 8 * electionTicks),
    crashAfterVotePerMille: rng.pick([0, 0, 100, 300]),
    crashNewLeaderPerMille: rng.pick([0, 0, 0, 100, 300]),
    crashAfterCommitPerMille: rng.pick([0, 0, 0, 20, 100]),
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
    persist: { mode: o.persist ?? "sync", fsyncTicksMax: 0, crashKeepsWritePerMille: 0, crashKeepsAllPerMille: 0, readysInFlight: 1 },
  };
  mix.maxInflightBytes = mix.keepTailEntries % 2 === 1 ? 160 : 8 * 1024 * 1024;
  if (o.ticks !== undefined) mix.safetyTicks = o.ticks;
  // Each bug needs its own trigger often enough to be seen within the seed budget.
  if (o.bug === "forget-vote") {
    // Two candidates in one term, a voter that crashes right after voting and hears the other one after
    // its restart: needs split votes (short, close timeouts) and vote requests that arrive late.
    mix.crashAfterVotePerMille = 1000;
    mix.network.delayTicksMax = Math.max(mix.network.delayTicksMax, 2);
    mix.network.longDelayPerMille = Math.max(mix.network.longDelayPerMille, 200);
    mix.network.longDelayTicksMax = 4;
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
    // Raft paper figure 8: leaders that replicate an old-term entry to a bare majority and crash.
    // Silent loss leaves old-term entries on a minority more often (the sender does not retry at once).
    mix.network.silentLoss = true;
    mix.crashNewLeaderPerMille = 300;
    mix.crashAfterCommitPerMille = 300;
    mix.maxPayloadEntries = 1;
    mix.maxInflight = 1;
    mix.network.lossPerMille = Math.max(mix.network.lossPerMille, 150);
    mix.maxDownTicks = 2 * electionTicks;
    mix.crashPerMille = 30;
    mix.partitionKinds = ["isolate-leader", "symmetric"];
    mix.partitionChangePerMille = 100;
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
    `maxPayloadEntries=${m.maxPayloadEntries} maxInflight=${m.maxInflight} maxInflightBytes=${m.maxInflightBytes} snapshotEveryEntries=${m.snapshotEveryEntries} keepTailEntries=${m.keepTailEntries}`,
    `network: loss=${n.lossPerMille}‰${n.silentLoss ? " (silent)" : ""} dup=${n.duplicatePerMille}‰ delay=${n.delayTicksMin}..${n.delayTicksMax} ticks longDelay=${n.longDelayPerMille}‰ up to ${n.longDelayTicksMax} ticks`,
    `partitions=[${m.partitionKinds.join(",")}] change=${m.partitionChangePerMille}‰/tick crash=${m.crashPerMille}‰/tick down<=${m.maxDownTicks} crashAfterVote=${m.crashAfterVotePerMille}‰ crashNewLeader=${m.crashNewLeaderPerMille}‰ crashAfterCommit=${m.crashAfterCommitPerMille}‰ pause=${m.pausePerMille}‰/tick <=${m.pauseTicksMax} membership=${m.membershipPerMille}‰ transfer=${m.transferPerMille}‰`,
    `workload: clients=${w.clients} keys=${w.keys.join(",")} start=${w.startPerMille}‰ get=${w.getPerMille}‰ cas=${w.casPerMille}‰ opTimeout=${w.opTimeoutTicks} ticks`,
    m.persist.mode === "sync"
      ? "persist: sync"
      : `persist: async fsync=0..${m.persist.fsyncTicksMax} ticks, up to ${m.persist.readysInFlight} Ready(s) in flight; a crash mid-fsync keeps entries+hard state ${m.persist.crashKeepsWritePerMille}‰, also applies ${m.persist.crashKeepsAllPerMille}‰`,
  ].join("\n");
}
