/**
 * The node's read-only views: the cluster view (`GET /v1/cluster`), member addresses, and the node's
 * Prometheus metrics. Plain functions of the node's state, so they are easy to test.
 */
import { histogramSeriesText, histogramText, type HistogramCounts } from "./histogram.ts";
import type { LoopDelayHistogram } from "./loop-delay.ts";
import type { ClusterView, MemberInfo, MemberStatus } from "../api/service.ts";
import type { KvStateMachine, MemberAddress } from "../kv/state-machine.ts";
import type { RaftStatus } from "../raft/types.ts";
import type { PeerState, PeerStatus } from "./transport.ts";

/** Every PeerState, in the order `edgekv_peer_state` lists them. */
const PEER_STATES: readonly PeerState[] = ["connecting", "connected", "suspect", "failed"];


export type { MemberAddress } from "../kv/state-machine.ts";

/** Member id -> URLs, as applied on this node. */
export function memberAddresses(kv: KvStateMachine): Record<string, MemberAddress> {
  return kv.members();
}

/**
 * The cluster as this node sees it: membership from the Raft core's configuration (in force as soon as it
 * is appended, Raft thesis §4.1), URLs from the applied member table, liveness from the peer transport
 * (this node itself is always `connected`).
 */
export function clusterView(selfId: string, clusterId: string, st: RaftStatus, kv: KvStateMachine, peers: Record<string, PeerStatus>): ClusterView {
  const addresses = memberAddresses(kv);
  const roles = new Map<string, MemberInfo["role"]>();
  for (const id of st.confState.votersOutgoing) roles.set(id, "voter");
  for (const id of st.confState.voters) roles.set(id, "voter");
  for (const id of st.confState.learners) roles.set(id, "learner");
  const members: MemberInfo[] = [...roles.keys()].sort().map((id) => ({
    id,
    role: roles.get(id)!,
    clientUrl: addresses[id]?.clientUrl ?? "",
    peerUrl: addresses[id]?.peerUrl ?? peers[id]?.url ?? "",
    status: id === selfId ? "connected" : memberStatus(peers[id]),
    isLeader: id === st.leaderId,
  }));
  return {
    clusterId,
    selfId,
    leaderId: st.leaderId,
    term: st.term,
    commitIndex: st.commitIndex,
    appliedIndex: kv.appliedIndex(),
    revision: kv.revision(),
    members,
  };
}

function memberStatus(p: PeerStatus | undefined): MemberStatus {
  if (!p) return "failed";
  return p.state === "connecting" ? "suspect" : p.state;
}

/** Inputs of `nodeMetricsText`. Fsync histogram: cumulative buckets are computed here from per-bucket counts. */
export interface NodeMetricsInput {
  status: RaftStatus;
  appliedIndex: number;
  revision: number;
  proposalsPending: number;
  readsPending: number;
  watchers: number;
  peers: Record<string, PeerStatus>;
  fsync: HistogramCounts;
  /** Leader: AppendEntries round trip per follower (src/server/append-rtt.ts); omitted or empty otherwise. */
  roundTrips?: Array<{ peer: string; histogram: HistogramCounts }>;
  /** This node's proposals, from propose to the committing Ready (seconds); omitted when not measured. */
  proposalCommit?: HistogramCounts;
  /** Times this node saw a leader different from the last one (0 when absent). */
  leaderChangesSeen?: number;
  /** Readys written while an earlier one's fsync was in flight (pipelined persist; 0 when absent). */
  readysPipelined?: number;
  /** WAL fsyncs run inline on the event loop and on the runtime's thread pool since start (node.ts `inlineSyncFits`); omitted when not counted. */
  walSyncs?: { inline: number; pool: number };
  /** Event-loop delay histogram (src/server/loop-delay.ts); omitted when not measured. */
  loopDelay?: LoopDelayHistogram;
}

/** Prometheus text exposition (0.0.4) of the node's Raft, storage and peer metrics. */
export function nodeMetricsText(m: NodeMetricsInput): string {
  const st = m.status;
  const out: string[] = [];
  const gauge = (name: string, help: string, value: number, labels = "") => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`, `${name}${labels} ${value}`);
  };
  gauge("edgekv_raft_term", "Current Raft term.", st.term);
  gauge("edgekv_raft_is_leader", "1 when this node is the leader.", st.role === "leader" ? 1 : 0);
  out.push(
    "# HELP edgekv_leader_changes_seen_total Times this node saw a leader different from the last one (etcd's etcd_server_leader_changes_seen_total).",
    "# TYPE edgekv_leader_changes_seen_total counter",
    `edgekv_leader_changes_seen_total ${m.leaderChangesSeen ?? 0}`,
  );
  out.push(
    "# HELP edgekv_persists_pipelined_total Raft Readys written while an earlier one's WAL fsync was still in flight (pipelined persist: their writes overlap that fsync; docs/storage.md).",
    "# TYPE edgekv_persists_pipelined_total counter",
    `edgekv_persists_pipelined_total ${m.readysPipelined ?? 0}`,
  );
  if (m.walSyncs) {
    out.push(
      "# HELP edgekv_wal_fsyncs_total WAL fsyncs of Raft persists, by where they ran: inline on the event loop (a lone Ready on a fast disk) or on the runtime's thread pool (docs/storage.md).",
      "# TYPE edgekv_wal_fsyncs_total counter",
      `edgekv_wal_fsyncs_total{way="inline"} ${m.walSyncs.inline}`,
      `edgekv_wal_fsyncs_total{way="pool"} ${m.walSyncs.pool}`,
    );
  }
  gauge("edgekv_raft_commit_index", "Raft commit index.", st.commitIndex);
  gauge("edgekv_raft_applied_index", "Index of the last entry applied to the state machine.", m.appliedIndex);
  gauge("edgekv_raft_last_index", "Index of the last entry in the local log.", st.lastIndex);
  gauge("edgekv_kv_revision", "Store revision.", m.revision);
  gauge("edgekv_proposals_pending", "Proposals waiting to apply.", m.proposalsPending);
  gauge("edgekv_reads_pending", "Linearizable reads waiting for their ReadIndex.", m.readsPending);
  gauge("edgekv_watchers_waiting", "Watchers parked waiting for new events.", m.watchers);
  out.push(
    ...histogramText(
      "edgekv_fsync_duration_seconds",
      "Duration of one Raft persist that fsynced: its SQLite transaction plus the fsync of the write-ahead log (inline, or on another thread until it resolved).",
      m.fsync,
    ),
  );
  if (m.proposalCommit) {
    out.push(
      ...histogramText(
        "edgekv_proposal_commit_seconds",
        "From a proposal made on this node (a write, while it leads) to the Ready that carries it committed: its own persist and fsync or a quorum's AppendEntries round trip, whichever ends later, plus the waits between them.",
        m.proposalCommit,
      ),
    );
  }
  if (m.roundTrips && m.roundTrips.length > 0) {
    out.push(
      ...histogramSeriesText(
        "edgekv_peer_round_trip_seconds",
        "Leader: from handing an AppendEntries with entries to the transport to the follower's success reply covering its last entry (the way there, the follower's persist and fsync, the way back).",
        m.roundTrips.map((r) => ({ labels: { peer: r.peer }, histogram: r.histogram })),
      ),
    );
  }
  if (m.loopDelay) {
    out.push(
      ...histogramText(
        "edgekv_event_loop_delay_seconds",
        "How late a timer due every 20 ms ran: the length of synchronous stretches of work on the node's event loop, which every request in flight waits out.",
        m.loopDelay,
      ),
    );
    const d = m.loopDelay;
    gauge("edgekv_event_loop_delay_max_seconds", "Largest event-loop delay seen since the node started.", d.maxSeconds);
  }
  // One series per peer (a state label would start a new series at every change, and leave the old one
  // stale); the state itself is the one-hot edgekv_peer_state, as kube-state-metrics exposes enums.
  out.push("# HELP edgekv_peer_up Peer link: 1 connected, 0.5 suspect, 0 failed or connecting.", "# TYPE edgekv_peer_up gauge");
  for (const [id, p] of Object.entries(m.peers).sort()) {
    const v = p.state === "connected" ? 1 : p.state === "suspect" ? 0.5 : 0;
    out.push(`edgekv_peer_up{peer="${id}"} ${v}`);
  }
  out.push("# HELP edgekv_peer_state Peer link state: 1 on the current state's series, 0 on the others.", "# TYPE edgekv_peer_state gauge");
  for (const [id, p] of Object.entries(m.peers).sort()) {
    for (const s of PEER_STATES) out.push(`edgekv_peer_state{peer="${id}",state="${s}"} ${p.state === s ? 1 : 0}`);
  }
  out.push("# HELP edgekv_peer_dropped_batches_total Message batches dropped by a full peer queue.", "# TYPE edgekv_peer_dropped_batches_total counter");
  for (const [id, p] of Object.entries(m.peers).sort()) out.push(`edgekv_peer_dropped_batches_total{peer="${id}"} ${p.droppedBatches}`);
  out.push("# HELP edgekv_peer_queued_bytes Bytes waiting to be sent to the peer (send queue and stream buffer).", "# TYPE edgekv_peer_queued_bytes gauge");
  for (const [id, p] of Object.entries(m.peers).sort()) out.push(`edgekv_peer_queued_bytes{peer="${id}"} ${p.queuedBytes ?? 0}`);
  // Leader only: the Raft core's in-flight window per follower (RaftConfig.maxInflight / maxInflightBytes).
  const followers = Object.entries(st.progress ?? {}).filter(([id]) => id !== st.id).sort();
  out.push("# HELP edgekv_raft_inflight_messages AppendEntries sent to the follower and not yet answered (leader only).", "# TYPE edgekv_raft_inflight_messages gauge");
  for (const [id, p] of followers) out.push(`edgekv_raft_inflight_messages{peer="${id}"} ${p.inflight}`);
  out.push("# HELP edgekv_raft_inflight_bytes Entry data bytes in those AppendEntries (leader only; bounded by maxInflightBytes).", "# TYPE edgekv_raft_inflight_bytes gauge");
  for (const [id, p] of followers) out.push(`edgekv_raft_inflight_bytes{peer="${id}"} ${p.inflightBytes}`);
  return out.join("\n") + "\n";
}
