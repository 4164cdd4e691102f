/**
 * EdgeNode: one edgekv member. Drives the Raft core (src/raft) over the node's SQLite file (Raft log in
 * src/kv/raft-log.ts, state machine in src/kv/state-machine.ts), exchanges messages with peers through the
 * PeerTransport port, and implements the KvService port the HTTP API (src/api) serves.
 *
 * The Ready loop follows the I/O contract written on `Ready` (src/raft/types.ts, docs/raft.md):
 * send `sendNow` -> persist (one SQLite transaction = one fsync) -> send `messages` -> apply -> advance.
 * It runs in a `setImmediate` callback, after the event loop has delivered every request and peer frame
 * that arrived meanwhile, so all proposals made since the last persist share one fsync (group commit).
 *
 * Writes and leader-only reads that arrive at a follower are forwarded to the leader over the peer
 * transport (see `fetch`); linearizable reads are served by any member through ReadIndex.
 */
import { API_DEFAULTS, createApp } from "../api/app.ts";
import { ApiError, toApiError } from "../api/errors.ts";
import { splitRequestUrl } from "../api/http.ts";
import type {
  CallOptions,
  ClusterView,
  HealthStatus,
  KvService,
  LeaseStatus,
  ReadOptions,
  ServiceRangeResult,
  WatchMessage,
  WatchRequest,
  WriteOptions,
} from "../api/service.ts";
import { decodeCommand, encodeCommand } from "../codec/command.ts";
import type { Config } from "../config/schema.ts";
import { SqliteRaftLog } from "../kv/raft-log.ts";
import { kvSchemaOutdated } from "../kv/schema.ts";
import { WalScanner } from "../kv/wal-scan.ts";
import {
  type SnapshotFiles,
  type SnapshotInfo,
  compactStepBehindSnapshot,
  snapshotDue,
  snapshotPhaseEntries,
  logTailEntriesFor,
  parseSnapshotRef,
  recordSnapshotFile,
  restoreSnapshot,
  snapshotRef,
  takeSnapshot,
  compactionPoint,
  compactionPointHeld,
  removeSnapshotFiles,
  removeSnapshotLeftovers,
} from "../kv/snapshot.ts";
import type { SqlDriver } from "../kv/sql-driver.ts";
import { KvStateMachine, type AppliedEntry } from "../kv/state-machine.ts";
import { Lessor } from "../kv/lessor.ts";
import { answerCapToCarry } from "../kv/answer-size.ts";
import { describeRoleChange, type RoleSeen } from "./role-log.ts";
import { StalenessClock, heartbeatTimeMs } from "./staleness.ts";
import { LoopDelayMonitor } from "./loop-delay.ts";
import { BucketHistogram, WRITE_PATH_BUCKETS_S } from "./histogram.ts";
import { AppendRoundTrips } from "./append-rtt.ts";
import type {
  CompactResult,
  DeleteRangeRequest,
  DeleteResult,
  KvRequest,
  KvResult,
  LeaseGrantResult,
  LeaseRevokeResult,
  PutRequest,
  PutResult,
  RangeRequest,
  TxnRequest,
  TxnResult,
} from "../kv/types.ts";
import { RaftNode } from "../raft/raw-node.ts";
import { createRng } from "../raft/rng.ts";
import { DEFAULT_RAFT_CONFIG, NotLeaderError, type ConfChange, type Entry, type InstallSnapshotMessage, type Message, type NodeId, type Ready, type SoftState } from "../raft/types.ts";
import { type ForwardCall, type ForwardReply, PeerRequestError, type PeerTransport, type PeerTransportOptions } from "./transport.ts";
import { ProposalWaiters, ReadWaiters } from "./waiters.ts";
import { readBodyWithin, sharedDeadline } from "../api/http.ts";
import { WatchHub, openWatch } from "./watch.ts";
import { clusterView, memberAddresses, nodeMetricsText, type MemberAddress } from "./cluster-view.ts";
import { checkJoinIdentity } from "./identity.ts";
import { peersDrift } from "./peers-drift.ts";
import { PeerReachability } from "./peer-reachability.ts";
import { readinessOf } from "./readiness.ts";
import { type RemovalChange, type RemovalState, afterConfigApplied, afterRemovalVerdict, isMemberOf, removedByPeerView } from "./removal-check.ts";
import { ConfigError } from "../config/load.ts";
import { WriteBehindSql } from "./unsafe-write-behind.ts";
import { lockDataDir, type DataDirLock } from "./data-dir-lock.ts";
import type { Hono } from "hono";

/** Runtime primitives the entry point passes in (runtime-adapters/ports.ts builds them per runtime). */
export interface NodePorts {
  openSqlite(path: string): Promise<SqlDriver>;
  /** The peer transport (options: the port's `PeerTransportOptions`, src/server/transport.ts). */
  createPeerTransport(opts: PeerTransportOptions): PeerTransport;
  snapshotFiles: SnapshotFiles;
  /**
   * Bytes an unprivileged process may still write on the file system holding `path` (statfs), undefined when
   * unknown; never throws. Optional: used to report a full disk at start as `disk_full` (data-dir-lock.ts).
   */
  freeBytes?(path: string): number | undefined;
  /** Chunks of a file for streaming (runtime-adapters/snapshot-files.ts readFileChunks). */
  readFileChunks(path: string): Iterable<Uint8Array>;
  /** Writes a streamed snapshot file durably; `finish` checks CRC-32C and size (SnapshotFileWriter). */
  createFileWriter(path: string): { write(chunk: Uint8Array): void; finish(crc32c: number, sizeBytes?: number): number; abort(): void };
  /**
   * Optional: makes a snapshot of the database file on another thread and connection and resolves with its
   * info (runtime-adapters/snapshot-off-loop.ts); the copy names the applied index it caught. Without it,
   * every snapshot blocks the Ready loop for its whole VACUUM INTO.
   */
  createSnapshotOffLoop?(dbPath: string, dir: string): Promise<SnapshotInfo>;
  /**
   * Optional: checkpoints the WAL of the database file on another thread and connection
   * (runtime-adapters/wal-checkpointer.ts), keeping the -wal file bounded; `onFail` is called once if that
   * thread fails. With it the node sets `wal_autocheckpoint=0` on its own connection, so no COMMIT of the
   * Ready loop pays for a checkpoint; without it (or after `onFail`) SQLite checkpoints in the COMMIT.
   * `wantsRestart()` is asked after each Ready (true at most once per worker round): when true the node
   * runs one PASSIVE checkpoint on its own connection so its next write starts the -wal file over.
   */
  startWalCheckpointer?(dbPath: string, onFail: (err: Error) => void): { close(): Promise<void>; wantsRestart(): boolean };
  /** Ms after a checkpoint thread failed before a new one is started (default `WAL_CHECKPOINTER_RETRY_MS`). */
  walCheckpointerRetryMs?: number;
  /**
   * Optional: fsyncs the database's -wal file on another thread (runtime-adapters/wal-sync.ts). `sync()`
   * resolves once every COMMIT that returned before the call is durable and rejects on an fsync error. With
   * it the node writes each Ready's entries with `synchronous=NORMAL` and keeps serving while the disk
   * syncs; it sends that Ready's replies and counts the entries as its own only after `sync()` resolves.
   * `syncNow()`, when present, makes the same fsync on the calling thread, returns how long it blocked (ms)
   * and throws what `sync()` rejects with: used for a lone Ready on a fast disk (`inlineSyncFits`). Without
   * the syncer every such COMMIT fsyncs on the event loop (`synchronous=FULL`).
   */
  createWalSync?(dbPath: string): NodeWalSync;
  log(level: "debug" | "info" | "warn" | "error", message: string): void;
}

/**
 * >>> EDGEKV_UNSAFE_BUG: a deliberately wrong rule for checker self-tests, read once from the environment
 * (Node/Bun `process.env`, Deno `Deno.env`); never from the config file or a flag, so it cannot be enabled
 * by accident. Known values (docs/nemesis.md): "local-reads" (linearizable reads skip ReadIndex, see
 * `readBarrier`) and "ack-before-fsync" (the database commits lazily, see src/server/unsafe-write-behind.ts
 * and `open`). Empty in every normal run; any value is logged as an error at start.
 */
const UNSAFE_BUG: string = (() => {
  const g = globalThis as { process?: { env?: Record<string, string | undefined> }; Deno?: { env?: { get(k: string): string | undefined } } };
  try {
    return g.process?.env?.EDGEKV_UNSAFE_BUG ?? g.Deno?.env?.get("EDGEKV_UNSAFE_BUG") ?? "";
  } catch {
    return ""; // Deno without env permission
  }
})();
// <<< EDGEKV_UNSAFE_BUG

/** This process's id for the data-dir lock's owner record (Node/Bun `process.pid`, Deno `Deno.pid`); -1 if unknown. */
function processId(): number {
  const g = globalThis as { process?: { pid?: number }; Deno?: { pid?: number } };
  return g.process?.pid ?? g.Deno?.pid ?? -1;
}
/** Least ms between two attempts to record this node's URLs in the cluster (see `announceSelf`). */
const ANNOUNCE_RETRY_MS = 3000;
/**
 * How long a snapshot file made for a follower is kept as the log's record before a compaction point may
 * replace it (ms), unless it was sent sooner: the leader core asks again on the follower's next answer, at
 * most a heartbeat later, and the stream takes a while to start on a loaded node.
 */
const SNAPSHOT_FILE_HOLD_MS = 30_000;

/** Log entries dropped per compaction step behind a snapshot (`compactLogBehind`): a few ms of SQLite work each. */
const COMPACT_STEP_ENTRIES = 2048;
/**
 * Readys written before the oldest one's fsync resolves (RaftConfig.maxReadysInFlight; pipelined persist,
 * handleReady). 1 would make every Ready written while an fsync runs wait for it; with more, the next
 * batches' SQLite writes overlap the fsync in flight, and the next fsync covers them (docs/bench.md
 * "Pipelined persist": no difference measurable on the bench machine's disk, a little with slower fsyncs).
 */
const READYS_IN_FLIGHT = 4;
/** The WAL syncer a node uses (NodePorts.createWalSync; runtime-adapters/wal-sync.ts `WalSync`). */
export interface NodeWalSync {
  sync(): Promise<void>;
  /** The fsync on the calling thread; returns the ms it blocked (the inline guard's measure). */
  syncNow?(): number;
  close(): Promise<void>;
}
/** A storage error meaning "no space left" (SQLite's SQLITE_FULL text, or the system's ENOSPC). */
const DISK_FULL_ERROR = /database or disk is full|SQLITE_FULL|ENOSPC|no space left/i;
/**
 * Largest median of this node's last `INLINE_FSYNC_WINDOW` inline WAL fdatasyncs (ms) at which a lone Ready's fsync runs inline on the
 * event loop (`inlineSyncFits`, WalSync.syncNow) instead of on the runtime's thread pool. A Ready of at most
 * one entry with nothing else in flight (a single client writing, or a follower taking one entry) waited for
 * two thread hand-offs around a sub-millisecond fdatasync: on the shared 2-core bench machine inline cut put@1's
 * p50 15-20 % in 5 of 6 alternating runs and the nodes' voluntary context switches per put from 22 to 13
 * (docs/bench.md "One fsync inline"). In the machine's slow phases the same fdatasyncs, timed on the loop,
 * had medians of 1.2-1.7 ms (1 ms as the bound kept most of them on the pool). A slower disk keeps the pool:
 * blocking the loop for several ms would hold every read and heartbeat behind it.
 */
export const INLINE_FSYNC_MAX_MS = 2;
/**
 * Inline fdatasyncs whose median is compared with `INLINE_FSYNC_MAX_MS` (the upper median of 8). A median,
 * not a mean: on the bench machine a node's inline fdatasyncs took p50 0.2-0.27 ms but p99 2-4 ms, and a
 * moving average that those few lifted past the bound kept 98 % of put@1's fsyncs on the pool.
 */
const INLINE_FSYNC_WINDOW = 8;
/**
 * Ms after the last inline fsync before one more runs inline although the median is past the bound: the only
 * way to see the disk got fast again (a pool fsync's time includes the two hand-offs, so it cannot tell), at the
 * price of one slow fsync on the loop per interval at worst.
 */
export const INLINE_FSYNC_RETRY_MS = 1000;

/** A Ready written and applied whose replies and advance() wait (EdgeNode.inFlight). */
interface InFlightReady {
  rd: Ready;
  /** Its writes are durable: an fsync called after its write resolved, or it needed none. */
  durable: boolean;
  /** performance.now() when its write began, ms (the fsync histogram measures from there). */
  writtenAtMs: number;
}
/** Ticks a graceful stop waits for a leadership transfer to finish. */
const TRANSFER_WAIT_MS = 2000;
/**
 * Ms after a WAL checkpoint thread failed before the node starts a new one (NodePorts.walCheckpointerRetryMs
 * overrides it). A transient failure (a full disk, B8 break session 2026-12-01) used to leave checkpoints in
 * the COMMIT until the process restarted.
 */
export const WAL_CHECKPOINTER_RETRY_MS = 30_000;


/**
 * One member. Create with `EdgeNode.open`, then `start()`; serve `fetch` on the client port; `stop()` on
 * SIGTERM. All methods of `KvService` reject with `ApiError` only.
 */
export class EdgeNode implements KvService {
  readonly id: NodeId;
  private readonly raft: RaftNode;
  private readonly app: Hono;
  private readonly proposals = new ProposalWaiters();
  private readonly reads = new ReadWaiters();
  private readonly hub = new WatchHub();
  private readonly lessor = new Lessor();
  private scheduled = false;
  /** Snapshot index the log is being compacted behind, and whether steps are running (`compactLogBehind`). */
  private compactSnapshotIndex = 0;
  private compactStepping = false;
  /** Role and leader as of the last Ready's soft state (role-log.ts). */
  private roleSeen: RoleSeen = { role: "follower", leaderId: "" };
  /** The last leader this node knew of ("" before any), kept across leaderless stretches. */
  private lastLeaderSeen = "";
  /** Times a leader different from the last one became known (`edgekv_leader_changes_seen_total`). */
  private leaderChangesSeen = 0;
  /** Readys written while an earlier one's fsync was in flight (`edgekv_persists_pipelined_total`). */
  private readysPipelined = 0;
  /** SQLite `synchronous` currently set on the connection (the driver opens with FULL). */
  private synchronous: "FULL" | "NORMAL" = "FULL";
  /** `term/vote` of the last persisted hard state ("" before the first save: that one is synced). */
  private durableTermVote = "";
  private ticker: ReturnType<typeof setInterval> | undefined;
  /** performance.now() at which a new WAL checkpoint thread is due after a failure (0: none due). */
  private walCheckpointerRetryAtMs = 0;
  private stopped = false;
  private fatal: Error | undefined;
  private readonly fatalListeners: Array<(err: Error) => void> = [];
  private lastSnapshotIndex: number;
  /** This member's snapshot phase in entries (`snapshotPhaseEntries`). */
  private snapshotPhase = 0;
  private lastSnapshotMs = performance.now();
  private lastLeaderContactMs: number | null = null;
  private readonly snapshotsInFlight = new Set<NodeId>();
  /** Persists that fsynced, by duration (`edgekv_fsync_duration_seconds`). */
  private readonly fsyncSeconds = new BucketHistogram(WRITE_PATH_BUCKETS_S);
  /** Leader only: AppendEntries round trip per follower (`edgekv_peer_round_trip_seconds`, append-rtt.ts). */
  private readonly appendRoundTrips = new AppendRoundTrips();
  /** Every peer URL this node was given or applied, by member id (refreshPeers keeps outgoing voters reachable). */
  private readonly peerUrlsSeen = new Map<string, string>();
  /** This node's proposals: from propose to the Ready that carries them committed (`edgekv_proposal_commit_seconds`). */
  private readonly commitSeconds = new BucketHistogram(WRITE_PATH_BUCKETS_S);
  /** How late the event loop runs timers (`edgekv_event_loop_delay_seconds`): its synchronous stretches. */
  private readonly loopDelay = new LoopDelayMonitor();
  /** This node's removal, applied or learned from a member's view; left when it is a member again (removal-check.ts). */
  private removal: RemovalState = { removed: false };
  /** Whether the last applied configuration listed this node (set at construction from the store). */
  private wasMember: boolean;
  /** Highest uncapped commit index a leader's heartbeat announced (HeartbeatMessage.leaderCommit). */
  private leaderCommitSeen = 0;
  /** Origin of a stale read's `X-Staleness-Ms`: when this node last held everything a leader had committed (staleness.ts). */
  private readonly staleness = new StalenessClock();
  /** Outbound reachability per peer (warn once per outage); grace = 2 election timeouts. */
  private readonly reachability: PeerReachability;
  private checkingMembership = false;
  private lastMembershipCheckMs = -Infinity;
  private markerWritten = false;
  /** Held from `open` until `stop` returns (src/server/data-dir-lock.ts). */
  private dataDirLock: DataDirLock | undefined;
  private announcing = false;
  private lastAnnounceMs = -Infinity;
  /** Set when the snapshot file to send was missing: take a new one at the next Ready. */
  private forceSnapshot = false;
  /**
   * Until this time (performance.now() ms) no compaction point replaces the snapshot file just made for a
   * follower, so the leader core's retry finds it (`snapshotFileHeld`).
   */
  private snapshotFileHeldUntilMs = 0;
  /** Followers the held file was sent to, with its index (`snapshotFileHeld`). */
  private readonly snapshotFileSentTo = new Map<NodeId, number>();
  /** True while a snapshot is being made on a worker thread (see maybeSnapshot). */
  private snapshotOffLoopRunning = false;
  /** Set when an off-loop snapshot failed: later ones are taken in place (the worker path may be broken here). */
  private snapshotOffLoopBroken = false;
  /** The WAL checkpoint thread while it runs (see `startWalCheckpoints`). */
  private walCheckpointer: { close(): Promise<void>; wantsRestart(): boolean } | undefined;
  /** Fsyncs the -wal file off the event loop (NodePorts.createWalSync); undefined: persist fsyncs inline. */
  private walSync: NodeWalSync | undefined;
  /**
   * Readys written (and applied) whose replies and advance() wait, oldest first: for an fsync called after
   * their write (`durable` set once one resolved, or at once when they needed none), and for every Ready
   * before them. At most READYS_IN_FLIGHT (the core's maxReadysInFlight); see handleReady and startSync.
   */
  private readonly inFlight: InFlightReady[] = [];
  /** The checkpointer asked for the writer's WAL restart and it has not run yet (walRestartDue). */
  private walRestartWanted = false;
  /** An fsync of the WAL is running (at most one; startSync). */
  private syncRunning = false;
  /** The last Ready written while it runs, which the next fsync covers (with every Ready before it). */
  private syncNext: InFlightReady | undefined;
  /** Durations of the last `INLINE_FSYNC_WINDOW` inline WAL fdatasyncs, ms (a ring; `inlineSyncFits`). */
  private readonly inlineSyncMs: number[] = [];
  /** Where the next duration goes in `inlineSyncMs`. */
  private inlineSyncAt = 0;
  /** Upper median of `inlineSyncMs`, ms (0 before the window is full). */
  private inlineSyncMedianMs = 0;
  /** performance.now() at the end of the last inline fsync (-Infinity: none yet). */
  private lastInlineSyncMs = -Infinity;
  /** WAL fsyncs run inline (`inlineSyncFits`) and on the pool since start (`edgekv_wal_fsyncs_total{way}`). */
  readonly walSyncCounts = { inline: 0, pool: 0 };

  private constructor(
    readonly config: Config,
    private readonly ports: NodePorts,
    private readonly db: SqlDriver,
    private readonly log: SqliteRaftLog,
    private readonly kv: KvStateMachine,
    private readonly transport: PeerTransport,
    private readonly snapshotDir: string,
  ) {
    this.id = config.nodeId;
    this.wasMember = isMemberOf(kv.confState(), config.nodeId);
    const electionTicks = Math.max(2, Math.round(config.electionTimeoutMsMin / config.tickMs));
    const heartbeatTicks = Math.max(1, Math.min(electionTicks - 1, Math.round(config.heartbeatIntervalMs / config.tickMs)));
    const seed = crypto.getRandomValues(new Uint32Array(1))[0];
    this.raft = new RaftNode(
      {
        id: config.nodeId,
        electionTicks,
        heartbeatTicks,
        maxPayloadEntries: config.maxPayloadEntries,
        maxPayloadBytes: Math.min(config.maxFrameBytes / 2, 4 * 1024 * 1024),
        maxInflight: DEFAULT_RAFT_CONFIG.maxInflight,
        maxInflightBytes: DEFAULT_RAFT_CONFIG.maxInflightBytes,
        maxReadysInFlight: READYS_IN_FLIGHT,
        preVote: true,
        checkQuorum: true,
        readOnly: config.readOnly,
        applied: kv.appliedIndex(),
        bugs: new Set(),
      },
      log,
      createRng(seed),
    );
    this.lastSnapshotIndex = log.snapshotIndex();
    this.cleanSnapshotDir();
    this.refreshSnapshotPhase();
    this.reachability = new PeerReachability(2 * config.electionTimeoutMsMax);
    this.app = createApp(this, {
      maxValueBytes: config.maxValueBytes,
      requestTimeoutMs: config.requestTimeoutMs,
      maxWatches: config.maxWatches,
    });
  }

  /**
   * Opens `<dataDir>/edgekv.db` (creating it), bootstraps a brand-new cluster when `config.bootstrap` (or
   * when `peers` names only this node) and the store is empty, and builds the node. Throws when the
   * database cannot be opened or its contents are corrupt, and `ConfigError` (field clusterId; node.ts exits
   * 2) when the data dir's marker records another cluster id than `config.clusterId`.
   */
  static async open(config: Config, ports: NodePorts): Promise<EdgeNode> {
    const files = ports.snapshotFiles;
    files.ensureDir(config.dataDir);
    // First of all: one process per data dir (src/server/data-dir-lock.ts), before anything reads the store.
    const lock = await lockDataDir({
      dataDir: config.dataDir,
      openSqlite: (path) => ports.openSqlite(path),
      files,
      owner: { nodeId: config.nodeId, pid: processId(), startedAt: new Date().toISOString() },
      freeBytes: ports.freeBytes ? (path) => ports.freeBytes!(path) : undefined,
    });
    try {
      const node = await EdgeNode.openLocked(config, ports);
      node.dataDirLock = lock;
      return node;
    } catch (err) {
      lock.release();
      throw err;
    }
  }

  /** `open` once the data dir's lock is held. */
  private static async openLocked(config: Config, ports: NodePorts): Promise<EdgeNode> {
    const files = ports.snapshotFiles;
    const snapshotDir = `${config.dataDir}/snapshots`;
    files.ensureDir(snapshotDir);
    const dbPath = `${config.dataDir}/edgekv.db`;
    const marker = readMarker(files, config.dataDir);
    if (marker && marker.nodeId !== config.nodeId) {
      throw new Error(`data dir ${config.dataDir} belongs to node ${marker.nodeId}, not ${config.nodeId}; start ${marker.nodeId} with it, or give ${config.nodeId} its own data dir`);
    }
    if (marker && typeof marker.clusterId === "string" && marker.clusterId !== config.clusterId) {
      // Started anyway, the node and its old peers refuse each other's requests (403 cluster_mismatch) forever.
      throw new ConfigError(
        "clusterId",
        "",
        `clusterId ${JSON.stringify(config.clusterId)} (--cluster-id, EDGEKV_CLUSTER_ID, the config file, or FLY_APP_NAME on Fly.io) does not match ` +
          `the cluster id ${JSON.stringify(marker.clusterId)} recorded in data dir ${config.dataDir} (${MARKER_FILE}): this data dir holds a member of cluster ` +
          `${JSON.stringify(marker.clusterId)}. Start it with --cluster-id ${marker.clusterId}, or give this member of ${JSON.stringify(config.clusterId)} an empty data dir`,
      );
    }
    let db: SqlDriver;
    let log: SqliteRaftLog;
    let kv: KvStateMachine;
    checkWalFile(files, `${dbPath}-wal`, config.nodeId);
    try {
      db = await ports.openSqlite(dbPath);
      // A damaged file must stop the start, before the node votes or answers (a tester's node with
      // overwritten pages served, voted, then died on its first bad page). quick_check reads every page
      // (about 1 s per 150 MB here); it skips index-vs-table cross checks, which the per-entry CRC covers
      // for the Raft log.
      const check = db.prepare("PRAGMA quick_check(1)").get() as Record<string, unknown> | undefined;
      const verdict = check ? String(Object.values(check)[0]) : "no answer";
      if (verdict !== "ok") throw new Error(`integrity check failed: ${verdict}`);
      // >>> EDGEKV_UNSAFE_BUG (test only: test/nemesis/ack-before-fsync.test.ts proves the nemesis harness
      // catches lost acknowledged writes). Every write is held in memory and committed ~1 s later.
      if (UNSAFE_BUG !== "") ports.log("error", `EDGEKV_UNSAFE_BUG=${UNSAFE_BUG}: this node is DELIBERATELY BROKEN for a checker self-test; never run it with data you care about`);
      if (UNSAFE_BUG === "ack-before-fsync") db = new WriteBehindSql(db);
      // <<< EDGEKV_UNSAFE_BUG
      log = new SqliteRaftLog(db);
      const upgrading = kvSchemaOutdated(db);
      const upgradeStartMs = performance.now();
      if (upgrading) {
        const events = db.prepare("SELECT COUNT(*) AS n FROM kv_history").get()?.n;
        ports.log("info", `upgrading the KV history (${events} events) to linked events, once (docs/kv.md "The history chain"); about 5 s per million events`);
      }
      kv = new KvStateMachine(db, {
        decode: decodeCommand,
        limits: { maxKeyBytes: config.maxKeyBytes, maxValueBytes: config.maxValueBytes },
      });
      if (upgrading) ports.log("info", `KV history upgraded in ${Math.round(performance.now() - upgradeStartMs)} ms`);
    } catch (err) {
      throw new Error(
        `cannot use the database ${dbPath}: ${(err as Error).message}. It is damaged: do not edit it. Remove this member ` +
          `(DELETE /v1/cluster/members/${config.nodeId} on another member), then start it with an empty data dir and add it back as a learner.`,
      );
    }
    if (marker && log.isEmpty() && kv.appliedIndex() === 0) {
      // docs/scenarios.md C13: a member that lost its state must not vote or count toward a quorum under its old
      // identity (it may have acknowledged writes the others lack). A wiped dir without the marker cannot be
      // told from a new node; a truncated or deleted database next to the marker can.
      db.close();
      throw new Error(
        `data dir ${config.dataDir} held node ${config.nodeId}'s state (created ${marker.createdAt}) but its database is empty: ` +
          `the member lost its data and must not rejoin under its old identity. Remove it (DELETE /v1/cluster/members/${config.nodeId} ` +
          `on another member), delete ${config.dataDir}, and add it back as a new learner.`,
      );
    }
    // A restart: membership comes from the store, and peers only overrides URLs (see peers-drift.ts).
    const restarted = !log.isEmpty() || kv.appliedIndex() > 0;
    const peers = { ...config.peers };
    if (!(config.nodeId in peers)) peers[config.nodeId] = config.advertisePeerUrl;
    const soleMember = Object.keys(peers).length === 1;
    const joining = log.isEmpty() && kv.appliedIndex() === 0 && !(config.bootstrap || soleMember);
    if (log.isEmpty() && kv.appliedIndex() === 0 && (config.bootstrap || soleMember)) {
      const voters = Object.keys(peers).sort();
      const confState = { voters, votersOutgoing: [], learners: [] };
      const addresses: Record<string, MemberAddress> = {};
      // Every founding member must write the same bootstrap state, so no client URL here (only this node
      // knows its own): each member records its URLs through the log once a leader exists (announceSelf).
      for (const id of voters) addresses[id] = { peerUrl: peers[id], clientUrl: "" };
      log.bootstrap(confState);
      kv.bootstrap(confState, addresses);
      ports.log("info", `bootstrapped a new cluster with voters ${voters.join(", ")}`);
    }
    const transport = ports.createPeerTransport({
      nodeId: config.nodeId,
      clusterId: config.clusterId,
      clusterSecret: config.clusterSecret,
      host: config.peerHost,
      port: config.peerPort,
      heartbeatIntervalMs: config.heartbeatIntervalMs,
      reconnectMsMin: config.peerReconnectMsMin,
      reconnectMsMax: config.peerReconnectMsMax,
      maxFrameBytes: config.maxFrameBytes,
      log: ports.log,
    });
    if (joining) {
      // docs/scenarios.md C13, whole data dir gone (marker too): the cluster is asked whether this id is a voter.
      const others = Object.fromEntries(Object.entries(peers).filter(([id]) => id !== config.nodeId));
      transport.setPeers(others);
      try {
        await checkJoinIdentity({ nodeId: config.nodeId, peerIds: Object.keys(others), forward: (to, req, signal) => transport.forward(to, req, signal), log: ports.log });
      } catch (err) {
        await transport.close();
        db.close();
        throw err;
      }
    }
    const node = new EdgeNode(config, ports, db, log, kv, transport, snapshotDir);
    node.markerWritten = marker !== undefined;
    node.writeMarkerOnce();
    node.refreshPeers(peers);
    if (restarted) node.logPeersDrift();
    return node;
  }

  /** Logs how the configured peers differ from the stored membership, and which wins (see peers-drift.ts). */
  private logPeersDrift(): void {
    const cs = this.raft.status().confState;
    const storedPeerUrls = Object.fromEntries(Object.entries(memberAddresses(this.kv)).map(([id, a]) => [id, a.peerUrl]));
    const members = [...cs.voters, ...cs.votersOutgoing, ...cs.learners];
    const drift = peersDrift({ nodeId: this.id, dataDir: this.config.dataDir, configured: this.config.peers, members, storedPeerUrls });
    if (drift) this.ports.log(drift.level, drift.message);
  }

  /** Starts the peer transport, the tick timer and the lease clock. Resolves once peers can connect. */
  async start(): Promise<void> {
    this.transport.onMessages((from, messages) => this.onPeerMessages(from, messages));
    this.transport.onSnapshot((from, meta, chunks) => this.receiveSnapshot(from, meta, chunks));
    this.transport.onForward(async (req) => this.app.fetch(req));
    await this.transport.listen();
    const voters = this.raft.status().confState.voters;
    if (voters.length === 1 && voters[0] === this.id) this.raft.campaign();
    this.startWalCheckpoints();
    if (this.ports.createWalSync && this.db.path !== ":memory:" && this.db.path !== "") this.walSync = this.ports.createWalSync(this.db.path);
    this.ticker = setInterval(() => this.onTick(), this.config.tickMs);
    this.loopDelay.start();
    this.schedule();
  }

  /**
   * Moves WAL checkpoints off the Ready loop when the ports can (NodePorts.startWalCheckpointer): automatic
   * checkpoints off on this connection, a worker thread checkpoints instead. If the worker fails, SQLite's
   * default (a checkpoint in the COMMIT past 1000 WAL pages) is switched back on, so the WAL stays bounded,
   * and a new thread is started `WAL_CHECKPOINTER_RETRY_MS` later (by the tick; it fails the same way if the
   * cause, say a full disk, is still there).
   */
  private startWalCheckpoints(): void {
    if (!this.ports.startWalCheckpointer || this.db.path === ":memory:" || this.db.path === "") return;
    this.db.exec("PRAGMA wal_autocheckpoint=0");
    this.walCheckpointer = this.ports.startWalCheckpointer(this.db.path, (err) => {
      this.walCheckpointer = undefined;
      if (this.stopped) return;
      const retryMs = this.ports.walCheckpointerRetryMs ?? WAL_CHECKPOINTER_RETRY_MS;
      this.ports.log("warn", `WAL checkpoint thread failed (${err.message}); checkpoints run in the commit again; a new thread in ${Math.round(retryMs / 1000)} s`);
      this.db.exec("PRAGMA wal_autocheckpoint=1000");
      this.walCheckpointerRetryAtMs = performance.now() + retryMs;
    });
  }

  /** From the tick: a new checkpoint thread once the retry delay after a failure has passed. */
  private maybeRetryWalCheckpoints(nowMs: number): void {
    if (this.walCheckpointerRetryAtMs === 0 || nowMs < this.walCheckpointerRetryAtMs || this.fatal) return;
    this.walCheckpointerRetryAtMs = 0;
    this.ports.log("info", "starting a new WAL checkpoint thread");
    this.startWalCheckpoints();
  }

  /**
   * The client HTTP handler. Requests that need the leader (writes, lease keepalive/TTL, `lease` reads)
   * are forwarded to it when this node is a follower; no known leader -> 503 `no_leader` with Retry-After.
   */
  async fetch(request: Request): Promise<Response> {
    // No request header opts out of forwarding: a request forwarded to us arrives through the peer
    // transport's onForward, which calls the API directly (`start`), never this method, so a request here is
    // always a client's. (An `x-edgekv-forwarded` header once marked forwards; a client sending it made a
    // follower answer 421 instead of forwarding, docs/nemesis.md.)
    if (this.needsLeader(request)) {
      const st = this.raft.status();
      if (st.role !== "leader") {
        // A removed member no longer hears a leader: say why it refuses, not `no_leader` (docs/scenarios.md C10).
        if (this.removed) return errorJson(new ApiError("not_member", `node ${this.id} is no longer a member of the cluster; use another node`));
        if (!st.leaderId) return errorJson(new ApiError("no_leader", "no leader is known; retry shortly", { retryAfterSec: 1 }));
        // A body the leader will refuse anyway gets its 413 here, not after crossing the peer link.
        const declared = Number(request.headers.get("content-length") ?? "0");
        const limit = Math.max(this.config.maxValueBytes, API_DEFAULTS.maxRequestBytes);
        if (declared > limit) return errorJson(new ApiError("payload_too_large", `body of ${declared} bytes is above the limit of ${limit} bytes`));
        // A chunked body declares no length: count it as it streams in and stop at limit + 1 byte, so a
        // follower never holds more than the limit nor sends more to the leader (a 200 MB chunked upload
        // grew a follower by 570 MB and broke its peer session; runtime-adapters/shared/peer-http2.ts).
        let body: Uint8Array<ArrayBuffer> | undefined;
        if (request.method !== "GET" && request.method !== "HEAD") {
          try {
            if (request.headers.has("content-length")) {
              // A declared length (at most the limit, checked above) is read in one native call, without
              // touching `request.body`: on Bun the stream and its reader loop cost about 7 % of a follower
              // under put@64 (docs/bench.md "Follower writes"; readBodyBytes in src/api/http.ts does the same).
              body = new Uint8Array(await request.arrayBuffer());
            } else if (request.body) {
              const read = await readBodyWithin(request.body, limit);
              if (!read.ok) return errorJson(new ApiError("payload_too_large", `body of more than ${limit} bytes is above the limit of ${limit} bytes`));
              body = read.bytes;
            }
          } catch (err) {
            // The client went away mid-upload: nothing was forwarded, so nothing can have been applied.
            return errorJson(new ApiError("bad_request", `request body could not be read: ${(err as Error).message}`));
          }
          if (body && body.length > limit) return errorJson(new ApiError("payload_too_large", `body of ${body.length} bytes is above the limit of ${limit} bytes`));
        }
        // A frozen (SIGSTOPped) leader keeps its connection open and never answers: bound the forward by the
        // request timeout (scenario C23; test/nemesis/scenarios.test.ts). Past it the write may have been
        // proposed, so the answer is outcome_unknown, never a silent hang. One shared timer per 100 ms of
        // requests (sharedDeadline), not one per forward.
        const deadline = sharedDeadline(this.config.requestTimeoutMs);
        const signal = AbortSignal.any([request.signal, deadline]);
        try {
          // Writes answer with a whole body: they share a forward batch with the other writes of this turn
          // (one peer stream, each answered on its own; docs/peer-protocol.md "Forward batches"). Reads
          // that need the leader may stream (a large range): one stream each.
          if (request.method !== "GET" && request.method !== "HEAD") return replyResponse(await this.transport.forwardCall(st.leaderId, forwardCallOf(request, body), signal));
          const fwd = new Request(request.url, { method: request.method, headers: request.headers, body, signal: request.signal });
          return await this.transport.forward(st.leaderId, fwd, signal);
        } catch (err) {
          const e = err as Error;
          if (deadline.aborted && !request.signal.aborted) {
            return errorJson(new ApiError("outcome_unknown", `leader ${st.leaderId} did not answer the forwarded request within ${this.config.requestTimeoutMs} ms; it may have been applied`));
          }
          // `unavailable` promises "nothing was applied", true only when the request never reached the
          // leader's handler (not connected, or refused at admission). A stream reset or cancel after
          // sending may follow an applied write (nemesis finding 5, docs/nemesis.md): outcome_unknown.
          if (!(err instanceof PeerRequestError) || err.code === "reset") {
            return errorJson(new ApiError("outcome_unknown", `forwarding to leader ${st.leaderId} broke after sending: ${e.message}; it may have been applied`));
          }
          return errorJson(new ApiError("unavailable", `forwarding to leader ${st.leaderId} failed: ${e.message}`, { retryAfterSec: 1 }));
        }
      }
    }
    return this.app.fetch(request);
  }

  /**
   * Graceful stop (SIGTERM): a leader first transfers leadership to the most caught-up voter and waits up to
   * 2 s for it; then every waiting request gets a definite error, timers stop, the transport and the
   * database close. Idempotent.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    const st = this.raft.status();
    if (st.role === "leader" && st.progress && !this.fatal) {
      const target = Object.entries(st.progress)
        .filter(([id, p]) => id !== this.id && !p.isLearner && p.recentActive)
        .sort((a, b) => b[1].matchIndex - a[1].matchIndex)[0]?.[0];
      if (target) {
        try {
          this.raft.transferLeader(target);
          this.schedule();
          const until = performance.now() + TRANSFER_WAIT_MS;
          while (performance.now() < until && this.raft.status().role === "leader") await sleep(20);
        } catch (err) {
          this.ports.log("warn", `leadership transfer on stop failed: ${(err as Error).message}`);
        }
      }
    }
    this.stopped = true;
    this.loopDelay.stop();
    if (this.ticker) clearInterval(this.ticker);
    this.proposals.failAll("the node is shutting down");
    this.reads.failAll(new ApiError("unavailable", "the node is shutting down", { retryAfterSec: 1 }));
    this.hub.notify();
    await this.transport.close();
    await this.walCheckpointer?.close();
    await this.walSync?.close();
    this.db.close();
    this.dataDirLock?.release();
  }

  // ---------------------------------------------------------------------------------------------------
  // The Ready loop

  private schedule(): void {
    if (this.scheduled || this.stopped) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.process();
    });
  }

  private onTick(): void {
    if (this.stopped) return;
    this.raft.tick();
    const now = performance.now();
    if (this.lessor.isPrimary()) {
      const ids = this.lessor.expired(now);
      if (ids.length > 0) this.proposeQuietly({ op: "leaseExpire", ids });
      this.reportUnreachablePeers();
    }
    this.announceSelf();
    for (const line of this.reachability.observe(now, this.transport.peerStatus())) this.ports.log("warn", line);
    this.checkMembership(now);
    this.maybeRetryWalCheckpoints(now);
    this.schedule();
  }

  /**
   * A follower whose stream is down goes back to probe mode (etcd's ReportUnreachable), so the leader stops
   * pipelining AppendEntries into a dead link (they would pile up in the transport queue) and, once the
   * follower is back, probes it and sends a snapshot if its next index was compacted meanwhile.
   */
  private reportUnreachablePeers(): void {
    for (const [id, p] of Object.entries(this.transport.peerStatus())) {
      if (p.outbound !== "open") {
        this.raft.reportUnreachable(id);
        this.appendRoundTrips.forget(id);
      }
    }
  }

  private onPeerMessages(from: NodeId, messages: Message[]): void {
    if (this.stopped) return;
    const now = performance.now();
    for (const m of messages) {
      if (m.type === "appendEntriesResponse") {
        if (m.success) this.appendRoundTrips.acked(from, m.matchIndex, now);
        else this.appendRoundTrips.forget(from);
      }
      if (m.type === "installSnapshot" && !this.hasSnapshotFile(m)) {
        this.ports.log("warn", `dropping InstallSnapshot from ${from}: file ${describeRef(m)} not received yet`);
        continue;
      }
      if (m.type === "appendEntries" || m.type === "heartbeat" || m.type === "installSnapshot") {
        this.lastLeaderContactMs = Date.now();
        if (m.type === "heartbeat" && m.leaderCommit !== undefined) {
          if (m.leaderCommit > this.leaderCommitSeen) this.leaderCommitSeen = m.leaderCommit;
          // As of when it was sent: it may have waited in the socket while this process was stopped (B9).
          this.staleness.heard(m.leaderCommit, heartbeatTimeMs(this.lastLeaderContactMs, m.sentAtMs), this.kv.appliedIndex());
        }
        // Leader contact does not end a removal (a message queued before it may arrive late): applying a
        // configuration that lists this node again does (removal-check.ts afterConfigApplied).
      }
      try {
        this.raft.step(m);
      } catch (err) {
        this.fail(err as Error);
        return;
      }
    }
    this.schedule();
  }

  /**
   * Handles every Ready the core may hand out now (it bounds how many await advance(): READYS_IN_FLIGHT).
   * While fsyncs are in flight the leader's replication, heartbeats and read rounds go out at once
   * (RaftNode.takeSendNow). Any storage error is fatal: the node stops serving (never serves wrong data).
   */
  private process(): void {
    if (this.stopped || this.fatal) return;
    try {
      for (let guard = 0; guard < 64 && this.mayHandReady() && this.raft.hasReady(); guard++) this.handleReady(this.raft.ready());
      if (this.inFlight.length > 0) this.sendAll(this.raft.takeSendNow());
    } catch (err) {
      this.fail(err as Error);
    }
  }

  /**
   * False while Readys are in flight and a snapshot, a compaction point or a WAL restart is due: those
   * run only with the pipeline empty (the state machine has applied past the core's applied index until
   * every written Ready is advanced, and a compaction past that would break snapshot <= applied), so no
   * new Ready goes out until the ones in flight are durable.
   */
  private mayHandReady(): boolean {
    if (this.inFlight.length === 0) return true;
    if (this.walRestartDue()) return false;
    if (!this.snapshotDueNow()) return true;
    // A compaction point held back while a sent file may still be needed (snapshotFileHeld) would not run
    // anyway: the pipeline keeps going until the hold ends.
    return !this.forceSnapshot && this.snapshotFileHeldUntilMs !== 0 && performance.now() < this.snapshotFileHeldUntilMs;
  }

  /**
   * One Ready, in the order Raft's I/O contract asks (docs/raft.md): leader AppendEntries first (they may
   * leave before the entries are durable: the leader counts itself only after advance()), then the entries
   * and hard state are written, committed entries applied, and only once the write is durable are the other
   * messages (AppendEntries and vote replies) sent and advance() called. With a WAL syncer the fsync runs on
   * another thread: the Ready joins `inFlight` and `finishReady` runs when its fsync resolves; meanwhile the
   * event loop keeps reading requests and stepping messages, and the next Readys are written at once
   * (pipelined persist, up to READYS_IN_FLIGHT; etcd raft's asynchronous storage writes): their writes
   * follow in the WAL, the next fsync (one runs at a time) covers them all, and they finish strictly in
   * order, so no reply leaves before everything written before it is durable. A Ready that needs no fsync
   * still waits behind earlier ones (its reply may speak for their entries).
   * Applying before the local fsync is safe: the entries are committed (a quorum has them durably), and the
   * apply's frames follow the entries' frames in the same WAL, so no crash keeps the one without the other.
   */
  private handleReady(rd: Ready): void {
    if (this.inFlight.length > 0) this.readysPipelined++;
    this.sendAll(rd.sendNow);
    if (rd.softState) this.onSoftState(rd.softState);
    const t0 = performance.now();
    for (const e of rd.committedEntries) {
      const at = this.proposals.proposedAtMs(e.index, e.term);
      if (at !== undefined) this.commitSeconds.observe((t0 - at) / 1000);
    }
    const persisted = this.persistAndApply(rd);
    const results = persisted.results;
    let owed = persisted.owed;
    // A snapshot replaces the configuration too: a re-added node far behind gets one instead of entries.
    if (rd.snapshot) this.onMembershipApplied();
    if (results) this.afterApply(rd.committedEntries, results);
    for (const rs of rd.readStates) this.reads.indexKnown(rs.requestId, rs.index);
    for (const id of rd.droppedReadIds) this.reads.fail(id, new ApiError("unavailable", "leadership changed before the read was confirmed; retry", { retryAfterSec: 1 }));
    this.reads.release(this.kv.appliedIndex());
    if (owed && this.inlineSyncFits(rd)) {
      let blockedMs: number;
      try {
        blockedMs = this.walSync!.syncNow!();
      } catch (err) {
        this.fail(new Error(`fsync of the write-ahead log failed: ${(err as Error).message}`));
        return;
      }
      const s1 = performance.now();
      this.walSyncCounts.inline++;
      this.noteInlineSync(blockedMs);
      this.lastInlineSyncMs = s1;
      this.fsyncSeconds.observe((s1 - t0) / 1000);
      owed = false; // durable now: finishes below like a Ready that owed nothing (inlineSyncFits: none in flight)
    }
    if (!owed && this.inFlight.length === 0) {
      this.finishReady(rd);
      this.afterPipelineEmpty();
      return;
    }
    const item = { rd, durable: !owed, writtenAtMs: t0 };
    this.inFlight.push(item);
    if (!owed) return;
    // One fsync at a time (group commit at the fsync): a Ready written while one runs waits for the next,
    // which covers every Ready written meanwhile. An fsync per Ready made concurrent fdatasyncs of the same
    // file queue in the kernel, each waiting for the one before (AppendEntries round trips past 100 ms rose
    // from 0-6 to 26-68 per 10 s of put@64 in the probe), and the pool finished them out of order (B7).
    if (this.syncRunning) this.syncNext = item;
    else this.startSync(item);
  }

  /**
   * Fsyncs the WAL; when it resolves, `covers` and every Ready before it are durable (fdatasync(2) makes every
   * write made before the call durable), so their replies leave and the core advances, in order. The next
   * fsync, if a Ready was written meanwhile, starts first. A failed fsync is fatal (never retried).
   */
  private startSync(covers: InFlightReady): void {
    this.syncRunning = true;
    this.walSyncCounts.pool++;
    this.walSync!.sync().then(
      () => {
        this.syncRunning = false;
        this.fsyncSeconds.observe((performance.now() - covers.writtenAtMs) / 1000);
        if (this.stopped || this.fatal) return;
        const next = this.syncNext;
        this.syncNext = undefined;
        if (next) this.startSync(next);
        const covered = this.inFlight.indexOf(covers);
        for (let i = 0; i <= covered; i++) this.inFlight[i]!.durable = true;
        try {
          while (this.inFlight[0]?.durable) this.finishReady(this.inFlight.shift()!.rd);
          if (this.inFlight.length === 0) this.afterPipelineEmpty();
        } catch (err) {
          this.fail(err as Error);
          return;
        }
        this.schedule();
      },
      (err: Error) => {
        this.syncRunning = false;
        this.fail(new Error(`fsync of the write-ahead log failed: ${err.message}`));
      },
    );
  }

  /**
   * Whether the WAL fsync a Ready owes runs inline on the event loop (WalSync.syncNow) rather than on the
   * pool (startSync): only with nothing else in flight or running (so order is kept trivially), at most one
   * entry and no snapshot (a batch gains more from overlapping the fsync with the next write), a syncer that
   * has `syncNow`, and the median of the last inline fdatasyncs at most `INLINE_FSYNC_MAX_MS` (past it, one
   * inline fsync per `INLINE_FSYNC_RETRY_MS` measures the disk again). Same durability: the reply leaves after
   * fdatasync(2) returned, exactly as after the pool's.
   */
  private inlineSyncFits(rd: Ready): boolean {
    if (this.inFlight.length > 0 || this.syncRunning || rd.entries.length > 1 || rd.snapshot !== undefined || this.walSync?.syncNow === undefined) return false;
    return this.inlineSyncMedianMs <= INLINE_FSYNC_MAX_MS || performance.now() - this.lastInlineSyncMs >= INLINE_FSYNC_RETRY_MS;
  }

  /** Records one inline fdatasync's duration (ms) in the window and updates its upper median. */
  private noteInlineSync(ms: number): void {
    this.inlineSyncMs[this.inlineSyncAt] = ms;
    this.inlineSyncAt = (this.inlineSyncAt + 1) % INLINE_FSYNC_WINDOW;
    if (this.inlineSyncMs.length < INLINE_FSYNC_WINDOW) return;
    const sorted = [...this.inlineSyncMs].sort((a, b) => a - b);
    this.inlineSyncMedianMs = sorted[INLINE_FSYNC_WINDOW / 2]!;
  }

  /** The rest of a Ready once it and every earlier one are durable: replies leave, the core learns what is stable. */
  private finishReady(rd: Ready): void {
    this.sendAll(rd.messages);
    this.raft.advance();
  }

  /** With no Ready in flight (kv applied index = the core's): snapshots, compaction points, a WAL restart. */
  private afterPipelineEmpty(): void {
    this.maybeSnapshot();
    this.maybeRestartWal();
  }

  /**
   * Under steady writes the checkpoint worker's PASSIVE rounds never let SQLite start the -wal file over,
   * and each TRUNCATE at its bound stalled this node's next BEGIN for 100-300 ms. This connection is the
   * only writer, so a PASSIVE checkpoint on it between two transactions completes and the next write starts
   * the WAL over. When that is worth it (once per worker round, past a frame count) is the checkpointer's
   * decision (runtime-adapters/wal-checkpointer.ts `wantsRestart`, docs/storage.md "Checkpoints").
   */
  private maybeRestartWal(): void {
    if (!this.walRestartDue()) return;
    this.walRestartWanted = false;
    this.db.prepare("PRAGMA wal_checkpoint(PASSIVE)").get();
  }

  /**
   * Whether the writer's WAL restart is due. The checkpointer answers true once per round (asking counts as
   * answering), so the answer is kept until the restart runs: mayHandReady asked first, and maybeRestartWal
   * then heard false and never restarted the WAL, which grew to the TRUNCATE bound (100+ ms stalls).
   */
  private walRestartDue(): boolean {
    if (!this.walRestartWanted && this.walCheckpointer?.wantsRestart()) this.walRestartWanted = true;
    return this.walRestartWanted;
  }

  /**
   * Writes the Ready's snapshot, entries and hard state, and applies its committed entries: in ONE
   * transaction when there is something to save (one COMMIT per Ready, not two), else the apply alone.
   * `owed` is true when the writes still need the WAL fsync (written with `synchronous=NORMAL` while a WAL
   * syncer exists); false when they are already durable (or nothing needed syncing). `results` are the
   * applied entries' results (undefined when nothing was committed).
   */
  private persistAndApply(rd: Ready): { owed: boolean; results: AppliedEntry[] | undefined } {
    const committed = rd.committedEntries;
    let results: AppliedEntry[] | undefined;
    const t0 = performance.now();
    if (rd.snapshot) {
      const ref = parseSnapshotRef(rd.snapshot.data);
      const path = `${this.snapshotDir}/${ref.name}`;
      restoreSnapshot(this.db, this.log, path, {
        files: this.ports.snapshotFiles,
        expected: { crc32c: ref.crc32c, sizeBytes: ref.sizeBytes },
        hardState: rd.hardState,
      });
      recordSnapshotFile(this.ports.snapshotFiles, { name: ref.name, path, meta: rd.snapshot.meta, sizeBytes: ref.sizeBytes, crc32c: ref.crc32c });
      this.lastSnapshotIndex = rd.snapshot.meta.index;
      this.refreshSnapshotPhase();
      this.lessor.restore(this.kv.leases(), performance.now());
      this.refreshPeers();
      this.hub.notify();
    }
    let owed = false;
    let synced = rd.snapshot !== undefined;
    if (rd.entries.length > 0 || rd.hardState) {
      // etcd raft's MustSync: only new entries or a new term/vote must be fsynced before messages leave. A
      // save that only moves the commit index is written without its own fsync; the WAL is append-only, so
      // the next synced commit makes it durable, and after a power loss the commit index is re-learned.
      const termVote = rd.hardState ? `${rd.hardState.term}/${rd.hardState.vote}` : this.durableTermVote;
      const mustSync = rd.entries.length > 0 || termVote !== this.durableTermVote || rd.snapshot !== undefined;
      // The snapshot restore above committed with FULL itself; entries after it may go the async way too.
      owed = mustSync && this.walSync !== undefined;
      synced ||= mustSync && !owed;
      // Applying commits without its own fsync (etcd's backend also commits its bolt txn lazily): the
      // entries are durable in the Raft log on a quorum, the applied index moves in the same transaction,
      // and WAL frames become durable in order, so after a power loss the node re-applies from a
      // consistent applied index.
      this.setSynchronous(mustSync && !owed ? "FULL" : "NORMAL");
      try {
        const finish = this.db.transaction(() => {
          const fin = this.log.stage({ entries: rd.entries, hardState: rd.hardState });
          if (committed.length > 0) results = this.kv.applyEntriesInTransaction(committed);
          return fin;
        });
        finish();
      } finally {
        this.setSynchronous("FULL");
      }
      this.durableTermVote = termVote;
    }
    if (committed.length > 0 && results === undefined) {
      this.setSynchronous("NORMAL");
      try {
        results = this.kv.applyEntries(committed);
      } finally {
        this.setSynchronous("FULL");
      }
    }
    this.writeMarkerOnce();
    // The fsync histogram counts persists that fsynced (a commit-index-only save does not).
    if (synced) this.fsyncSeconds.observe((performance.now() - t0) / 1000);
    return { owed, results };
  }

  /**
   * Sets SQLite's `synchronous` for the next transactions (WAL mode: FULL fsyncs the WAL at each commit,
   * NORMAL leaves it to the next FULL commit or checkpoint). Only the Raft log's entries and term/vote need
   * FULL; everything else is re-derivable from them (see persist and apply).
   */
  private setSynchronous(mode: "FULL" | "NORMAL"): void {
    if (this.synchronous === mode) return;
    this.db.exec(`PRAGMA synchronous=${mode}`);
    this.synchronous = mode;
  }

  /** What follows an apply in memory: leases, waiting proposals, membership, watchers. */
  private afterApply(entries: Entry[], results: AppliedEntry[]): void {
    const termOf = new Map(entries.map((e) => [e.index, e.term]));
    let changed = false;
    let membership = false;
    const now = performance.now();
    for (const r of results) {
      if (r.events.length > 0) changed = true;
      // A session replay returns the stored result without applying again: its lease effect already happened.
      if (!r.duplicate) this.trackLease(r.result, now);
      this.proposals.applied(r, termOf.get(r.index)!);
    }
    for (const e of entries) if (e.type === "confChange") membership = true;
    if (membership) this.onMembershipApplied();
    if (changed) this.hub.notify();
  }

  private trackLease(result: KvResult | undefined, nowMs: number): void {
    if (!result) return;
    if (result.op === "leaseGrant") this.lessor.grant(result.id, result.ttlSeconds, nowMs);
    else if (result.op === "leaseRevoke") this.lessor.revoke(result.id);
    else if (result.op === "leaseExpire") for (const id of result.expired) this.lessor.revoke(id);
  }

  /** A Ready's new soft state: one log line per election step or leader change (role-log.ts), the counter, the lessor. */
  private onSoftState(s: SoftState): void {
    const note = describeRoleChange(this.roleSeen, s, this.raft.status().term, this.id, this.lastLeaderSeen);
    if (note.message) this.ports.log("info", note.message);
    if (note.newLeader) {
      this.leaderChangesSeen++;
      this.lastLeaderSeen = s.leaderId;
      // A removed leader was kept reachable only while it led (refreshPeers): let it go now.
      this.refreshPeers();
    }
    // A leader's data was current while a quorum confirmed it; after it steps down, a stale read's staleness
    // counts from then, not from the last time it heard another leader (maybe long before it led; U7).
    if (this.roleSeen.role === "leader" && s.role !== "leader") this.noteLeadershipEnded(Date.now());
    this.roleSeen = { role: s.role, leaderId: s.leaderId };
    // Sends of an earlier leadership are not this term's round trips.
    if (s.role !== "leader") this.appendRoundTrips.forget();
    this.onRoleChange(s.role === "leader");
  }

  /**
   * On losing leadership at `nowMs` (wall clock): the last time a quorum of voters was heard from (this node
   * counting as heard now; `quorumHeardAtMs`) becomes the last leader contact and the origin of
   * `X-Staleness-Ms` (StalenessClock.currentAt; docs/api.md). Never moves either back; no quorum ever heard
   * leaves them as they were.
   */
  private noteLeadershipEnded(nowMs: number): void {
    const cs = this.kv.confState();
    const peers = this.transport.peerStatus();
    const heardAt = (id: NodeId) => (id === this.id ? nowMs : (peers[id]?.lastHeardMs ?? 0));
    let t = quorumHeardAtMs(cs.voters.map(heardAt));
    if (cs.votersOutgoing.length > 0) t = Math.min(t, quorumHeardAtMs(cs.votersOutgoing.map(heardAt)));
    if (t > 0 && (this.lastLeaderContactMs === null || t > this.lastLeaderContactMs)) this.lastLeaderContactMs = t;
    if (t > 0) this.staleness.currentAt(t);
  }

  private onRoleChange(isLeader: boolean): void {
    if (isLeader && !this.lessor.isPrimary()) {
      // A new leader gives every lease a full TTL plus one election timeout (docs/scenarios.md C06).
      this.lessor.promote(performance.now(), this.config.electionTimeoutMsMax);
    } else if (!isLeader && this.lessor.isPrimary()) {
      this.lessor.demote();
    }
  }

  /** After entries with a configuration change, or a snapshot, were applied (see `afterConfigApplied`). */
  private onMembershipApplied(): void {
    this.refreshPeers();
    const isMember = isMemberOf(this.kv.confState(), this.id);
    const appliedIndex = this.kv.appliedIndex();
    const next = afterConfigApplied(this.removal, { wasMember: this.wasMember, isMember, appliedIndex });
    this.wasMember = isMember;
    this.onRemovalChange(next, isMember ? `it applied a configuration listing it again at index ${appliedIndex}` : "it applied a configuration without itself");
  }

  /** True while removed (docs/scenarios.md C10): client requests get `not_member`, `/readyz` 503, nothing is forwarded. */
  private get removed(): boolean {
    return this.removal.removed;
  }

  /** Takes a removal transition and logs it once: removed at warn, a member again at info. */
  private onRemovalChange(next: { state: RemovalState; change: RemovalChange }, why: string): void {
    this.removal = next.state;
    if (next.change === "removed") {
      this.ports.log("warn", `this node (${this.id}) was removed from the cluster (${why}); it now refuses client requests with not_member, reports not ready and forwards nothing`);
    } else if (next.change === "member_again") {
      this.ports.log("info", `this node (${this.id}) is a member of the cluster again (${why}); serving client requests again`);
    }
  }

  /**
   * A removed follower or learner never applies its removal: the leader drops it from its progress as soon
   * as the removal is appended (Raft thesis §4.1), so no commit index reaches it. Like etcd, where members
   * refuse a removed member's messages and it stops, the node asks: while it believes it is a member but
   * has heard no leader for an election timeout, every 2 s it reads one peer's cluster view (over the peer
   * transport) and takes `removedByPeerView`'s verdict. Covers a node that was down during its removal.
   */
  private checkMembership(nowMs: number): void {
    if (this.removed || this.fatal || this.checkingMembership || this.raft.status().role === "leader") return;
    if (nowMs - this.lastMembershipCheckMs < ANNOUNCE_RETRY_MS - 1000) return;
    const heard = this.lastLeaderContactMs;
    if (heard !== null && Date.now() - heard <= this.config.electionTimeoutMsMax) return;
    const cs = this.kv.confState();
    if (![...cs.voters, ...cs.votersOutgoing, ...cs.learners].includes(this.id)) return; // not joined yet
    const peers = Object.entries(this.transport.peerStatus()).filter(([, p]) => p.outbound === "open").map(([id]) => id);
    if (peers.length === 0) return;
    this.lastMembershipCheckMs = nowMs;
    this.checkingMembership = true;
    const peer = peers[Math.floor(Math.random() * peers.length)]!;
    const req = new Request("http://edgekv.internal/v1/cluster", { method: "GET" });
    this.transport
      .forward(peer, req, AbortSignal.timeout(2000))
      .then(async (res) => {
        if (!res.ok) return void (await res.body?.cancel());
        const verdict = removedByPeerView(this.id, this.kv.appliedIndex(), await res.json());
        if (verdict && !this.stopped) this.onRemovalChange(afterRemovalVerdict(this.removal, verdict), `member ${peer}'s view: ${verdict.why}`);
      })
      .catch((err) => this.ports.log("debug", `asking ${peer} for its cluster view failed: ${(err as Error).message}`))
      .finally(() => {
        this.checkingMembership = false;
      });
  }

  /**
   * Points the transport at every member's peer URL: the applied member table, overridden by the peers this
   * node was started with (the operator's current word: after a restart on new ports the table still holds
   * the old URLs until the members announce the new ones, which needs a leader, which needs these links),
   * plus `extra` at start.
   */
  private refreshPeers(extra: Record<string, string> = {}): void {
    const peers: Record<string, string> = {};
    for (const [id, a] of Object.entries(memberAddresses(this.kv))) if (a.peerUrl) peers[id] = a.peerUrl;
    Object.assign(peers, this.config.peers, extra);
    for (const [id, url] of Object.entries(peers)) this.peerUrlsSeen.set(id, url);
    // Every member of the log's configuration stays reachable, also one that the applied member table no
    // longer lists (a learner being added, a voter being removed), and so does the leader: a leader that
    // removes itself leads until the configuration without it commits (Raft thesis §4.2.2). Dropping it when
    // the joint entry applied cut it off from its followers' replies, and it fell to CheckQuorum before it
    // could commit its removal (U5).
    const st = this.raft?.status();
    if (st) {
      for (const id of [...st.confState.voters, ...st.confState.votersOutgoing, ...st.confState.learners, ...(st.leaderId ? [st.leaderId] : [])]) {
        const url = this.peerUrlsSeen.get(id);
        if (!(id in peers) && url) peers[id] = url;
      }
      this.appendRoundTrips.retain(new Set([...st.confState.voters, ...st.confState.votersOutgoing, ...st.confState.learners]));
    }
    delete peers[this.id];
    this.transport.setPeers(peers);
  }

  private sendAll(messages: Message[]): void {
    if (messages.length === 0) return;
    const byPeer = new Map<NodeId, Message[]>();
    const now = performance.now();
    const wallNow = Date.now();
    for (const m of messages) {
      if (m.type === "appendEntries" && m.entries.length > 0) this.appendRoundTrips.sent(m.to, m.entries[m.entries.length - 1].index, now);
      if (m.type === "heartbeat") m.sentAtMs = wallNow;
      if (m.type === "installSnapshot") {
        this.sendSnapshot(m);
        continue;
      }
      const list = byPeer.get(m.to);
      if (list) list.push(m);
      else byPeer.set(m.to, [m]);
    }
    for (const [to, list] of byPeer) this.transport.send(to, list);
  }

  /** InstallSnapshot: stream the file on its own stream first, then send the message that refers to it. */
  private sendSnapshot(m: InstallSnapshotMessage): void {
    if (this.snapshotsInFlight.has(m.to)) return;
    this.snapshotsInFlight.add(m.to);
    const ref = parseSnapshotRef(m.snapshot.data);
    const path = `${this.snapshotDir}/${ref.name}`;
    const meta = { ...m.snapshot.meta, crc32c: ref.crc32c, sizeBytes: ref.sizeBytes };
    const chunks = this.ports.readFileChunks(path);
    (async () => {
      try {
        await this.transport.sendSnapshot(m.to, meta, toAsync(chunks));
        this.transport.send(m.to, [m]);
        this.ports.log("info", `sent snapshot ${ref.name} (${ref.sizeBytes} bytes) to ${m.to}`);
        // Back to probing (etcd's SnapshotFinish): if the follower died before installing the file, its next
        // answer shows it behind the log start and it gets a snapshot again. Unreported, the leader kept it
        // paused in the snapshot state until a leader change (B4, docs/nemesis.md).
        if (!this.stopped) this.raft.reportSnapshot(m.to, true);
        this.snapshotFileSentTo.set(m.to, m.snapshot.meta.index);
        this.schedule();
      } catch (err) {
        this.ports.log("warn", `snapshot ${ref.name} to ${m.to} failed: ${(err as Error).message}`);
        // The file the log's snapshot record names is gone (should not happen: received snapshots are
        // recorded, local ones pruned only behind newer ones): take a fresh one rather than retry forever.
        if (!this.stopped && !this.ports.snapshotFiles.exists(path)) this.forceSnapshot = true;
        if (!this.stopped) this.raft.reportSnapshot(m.to, false);
        this.schedule();
      } finally {
        this.snapshotsInFlight.delete(m.to);
      }
    })();
  }

  private async receiveSnapshot(from: NodeId, meta: { index: number; term: number }, chunks: AsyncIterable<Uint8Array>): Promise<void> {
    const m = meta as { index: number; term: number; crc32c?: number; sizeBytes?: number };
    if (typeof m.crc32c !== "number") throw new Error("snapshot metadata lacks its crc32c");
    const path = `${this.snapshotDir}/snap-${m.term}-${m.index}.db`;
    const writer = this.ports.createFileWriter(path);
    try {
      for await (const c of chunks) writer.write(c);
      writer.finish(m.crc32c, m.sizeBytes);
      this.ports.log("info", `received snapshot at index ${m.index} from ${from}`);
    } catch (err) {
      writer.abort();
      throw err;
    }
  }

  private hasSnapshotFile(m: InstallSnapshotMessage): boolean {
    try {
      return this.ports.snapshotFiles.exists(`${this.snapshotDir}/${parseSnapshotRef(m.snapshot.data).name}`);
    } catch {
      return false;
    }
  }

  /**
   * At start: removes temp and partial snapshot files a crash left (tens of MB each; nothing else removes them
   * on a node that makes no copies), keeping the file the log's record names (`removeSnapshotLeftovers`).
   * Best effort: a file that cannot be removed is logged and left.
   */
  private cleanSnapshotDir(): void {
    let keep: string | undefined;
    const data = this.log.snapshotData();
    if (data && data.byteLength > 0) {
      try {
        keep = parseSnapshotRef(data).name;
      } catch {
        keep = undefined;
      }
    }
    try {
      const removed = removeSnapshotLeftovers(this.ports.snapshotFiles, this.snapshotDir, keep);
      if (removed.length > 0) this.ports.log("info", `removed snapshot files a crash left: ${removed.join(", ")}`);
    } catch (err) {
      this.ports.log("warn", `could not clean the snapshot directory: ${(err as Error).message}`);
    }
  }

  /**
   * Whether `maybeSnapshot` has work now: a snapshot file is wanted (moves the core's request into
   * `forceSnapshot`), or a compaction point is due by entries or by time; and no file is being made or
   * sent. A due compaction point may still be held back (`snapshotFileHeld`).
   */
  private snapshotDueNow(): boolean {
    if (this.log.snapshotFileWanted()) this.forceSnapshot = true;
    if (this.snapshotsInFlight.size > 0 || this.snapshotOffLoopRunning) return false;
    if (this.forceSnapshot) return true;
    const applied = this.kv.appliedIndex();
    return (
      snapshotDue(applied, this.lastSnapshotIndex, this.config.snapshotEntries, this.snapshotPhase) ||
      (applied > this.lastSnapshotIndex && performance.now() - this.lastSnapshotMs >= this.config.snapshotIntervalMs)
    );
  }

  /** Sets `snapshotPhase` from the membership now (`snapshotPhaseEntries`); run at start and after each snapshot. */
  private refreshSnapshotPhase(): void {
    const cs = this.kv.confState();
    this.snapshotPhase = snapshotPhaseEntries([...cs.voters, ...cs.votersOutgoing, ...cs.learners], this.id, this.config.snapshotEntries);
  }

  /**
   * After each Ready, once none is in flight. Every `snapshotEntries` applied entries (at this member's phase) or `snapshotIntervalMs`,
   * records a compaction point (`compactionPoint`: no copy, the database is the state) and compacts the log
   * behind it. A snapshot file (VACUUM INTO, seconds for a large store) is made only when a follower needs
   * one: the leader core asked for the snapshot while the record had no file (`snapshotFileWanted`), or the
   * file the record names is gone (`forceSnapshot`). Nothing starts while a file is being sent or made.
   */
  private maybeSnapshot(): void {
    if (!this.snapshotDueNow()) return;
    const applied = this.kv.appliedIndex();
    if (!this.forceSnapshot) {
      if (this.snapshotFileHeld(applied)) return;
      this.recordCompactionPoint();
      return;
    }
    this.forceSnapshot = false;
    const offLoop = this.ports.createSnapshotOffLoop;
    if (offLoop && !this.snapshotOffLoopBroken && this.dbSizeBytes() >= this.config.snapshotOffLoopBytes) {
      // VACUUM INTO of a large database takes seconds (docs/bench.md): on a worker's own connection the
      // Ready loop keeps persisting and applying meanwhile (issue #6: it stalled every write for that long).
      this.snapshotOffLoopRunning = true;
      const t0 = performance.now();
      offLoop(this.db.path, this.snapshotDir).then(
        (info) => {
          this.snapshotOffLoopRunning = false;
          this.recordOffLoopSnapshot(info, performance.now() - t0);
        },
        (err: Error) => {
          this.snapshotOffLoopRunning = false;
          this.snapshotOffLoopBroken = true;
          this.ports.log("warn", `snapshot on a worker thread failed (${err.message}); taking snapshots in place from now on`);
          this.schedule();
        },
      );
      return;
    }
    const info = takeSnapshot(this.db, this.log, { dir: this.snapshotDir, files: this.ports.snapshotFiles, compact: false });
    this.snapshotFileRecorded();
    this.compactLogBehind(info.meta.index);
    this.lastSnapshotIndex = info.meta.index;
    this.refreshSnapshotPhase();
    this.lastSnapshotMs = performance.now();
    this.ports.log("info", `snapshot at index ${info.meta.index} (${info.sizeBytes} bytes)`);
  }

  /**
   * Whether a compaction point must wait, at applied index `applied`: for at most `SNAPSHOT_FILE_HOLD_MS` after
   * a file was made for a follower, until it was sent and every follower it was sent to has caught up to
   * within the log tail of `applied`. Recorded earlier, the point's compaction dropped the entries right
   * after the file, the follower that had just installed it was behind the log start again, and a second
   * full copy followed each send (B5, docs/nemesis.md).
   */
  private snapshotFileHeld(applied: number): boolean {
    if (this.snapshotFileHeldUntilMs === 0) return false;
    const progress = this.snapshotFileSentTo.size > 0 ? (this.raft.status().progress ?? {}) : {};
    const held = compactionPointHeld(
      performance.now(),
      this.snapshotFileHeldUntilMs,
      this.snapshotFileSentTo,
      (id) => progress[id]?.matchIndex ?? 0,
      applied,
      logTailEntriesFor(this.config.snapshotEntries),
    );
    if (!held) {
      this.snapshotFileHeldUntilMs = 0;
      this.snapshotFileSentTo.clear();
    }
    return held;
  }

  /**
   * After a snapshot file became the log's record: the wishes for a file that came in while it was being made
   * are met by it (else a second copy would follow at once), and it is held for `SNAPSHOT_FILE_HOLD_MS`.
   */
  private snapshotFileRecorded(): void {
    this.log.snapshotFileWanted();
    this.forceSnapshot = false;
    this.snapshotFileHeldUntilMs = performance.now() + SNAPSHOT_FILE_HOLD_MS;
    this.snapshotFileSentTo.clear();
  }

  /**
   * Records a compaction point at the applied index as the log's snapshot, removes the snapshot files it
   * supersedes and compacts the log behind it in steps. Storage errors are fatal.
   */
  private recordCompactionPoint(): void {
    let point;
    try {
      point = compactionPoint(this.db);
      this.log.setSnapshot(point);
      removeSnapshotFiles(this.ports.snapshotFiles, this.snapshotDir);
    } catch (err) {
      this.fail(err as Error);
      return;
    }
    this.compactLogBehind(point.meta.index);
    this.lastSnapshotIndex = point.meta.index;
    this.refreshSnapshotPhase();
    this.lastSnapshotMs = performance.now();
    this.ports.log("info", `compaction point at index ${point.meta.index}: the log behind it is dropped in steps`);
  }

  /**
   * Records a snapshot made off the loop as the log's latest and compacts behind it, unless the node moved
   * past it meanwhile (a newer snapshot installed from the leader, or stopped). A file at the index of the
   * current compaction point replaces it (nothing was applied while it was made). Storage errors are fatal.
   */
  private recordOffLoopSnapshot(info: SnapshotInfo, tookMs: number): void {
    if (this.stopped || this.fatal || info.meta.index < this.lastSnapshotIndex) return;
    try {
      this.log.setSnapshot(snapshotRef(info));
    } catch (err) {
      this.fail(err as Error);
      return;
    }
    this.snapshotFileRecorded();
    this.compactLogBehind(info.meta.index);
    this.lastSnapshotIndex = info.meta.index;
    this.refreshSnapshotPhase();
    this.lastSnapshotMs = performance.now();
    this.ports.log("info", `snapshot at index ${info.meta.index} (${info.sizeBytes} bytes) made on a worker thread in ${Math.round(tookMs)} ms`);
    this.schedule();
  }

  /**
   * Drops the log behind a new snapshot at `snapshotIndex` (keeping `logTailEntriesFor(snapshotEntries)`
   * entries) in steps of `COMPACT_STEP_ENTRIES`, one per `setImmediate`, so requests, peer frames and
   * Readys run between the steps (`compactStepBehindSnapshot`). A later call while stepping moves the
   * target. The steps commit with `synchronous=NORMAL` when the node has a WAL syncer: dropping entries a
   * snapshot covers needs no fsync of its own (a crash keeps them, and the next compaction drops them).
   * A storage error stops the node.
   */
  private compactLogBehind(snapshotIndex: number): void {
    this.compactSnapshotIndex = Math.max(this.compactSnapshotIndex, snapshotIndex);
    if (this.compactStepping) return;
    this.compactStepping = true;
    const step = () => {
      if (this.stopped || this.fatal) {
        this.compactStepping = false;
        return;
      }
      let more: boolean;
      try {
        if (this.walSync) this.setSynchronous("NORMAL");
        more = compactStepBehindSnapshot(this.log, this.compactSnapshotIndex, logTailEntriesFor(this.config.snapshotEntries), COMPACT_STEP_ENTRIES);
      } catch (err) {
        this.compactStepping = false;
        this.fail(err as Error);
        return;
      }
      if (more) setImmediate(step);
      else this.compactStepping = false;
    };
    setImmediate(step);
  }

  /** Size of the database file in bytes (0 for an in-memory one or when it cannot be read). */
  private dbSizeBytes(): number {
    try {
      return this.ports.snapshotFiles.size(this.db.path);
    } catch {
      return 0;
    }
  }

  /**
   * Once the database holds state (bootstrapped, or anything persisted), records in the data dir which node
   * it belongs to, so a later start that finds the marker next to an empty database refuses (see `open`).
   */
  private writeMarkerOnce(): void {
    if (this.markerWritten || this.log.isEmpty()) return;
    const marker: DataDirMarker = { nodeId: this.id, clusterId: this.config.clusterId, createdAt: new Date().toISOString() };
    this.ports.snapshotFiles.writeTextDurably(`${this.config.dataDir}/${MARKER_FILE}`, JSON.stringify(marker) + "\n");
    this.markerWritten = true;
  }

  private fail(err: Error): void {
    if (this.fatal) return;
    this.fatal = err;
    if (DISK_FULL_ERROR.test(err.message)) {
      // The stable code users of the start-up check know (data-dir-lock.ts DiskFullError), not only SQLite's
      // words and a stack trace (B9: a disk that filled under load).
      const free = this.ports.freeBytes?.(this.config.dataDir);
      this.ports.log("error", `fatal: disk_full: the file system holding ${this.config.dataDir} is full${free === undefined ? "" : ` (${free} bytes free)`} (${err.message}); the node stops serving. Acknowledged writes are on disk: free space and restart the node`);
    } else this.ports.log("error", `fatal: ${err.stack ?? err.message}; the node stops serving`);
    this.proposals.failAll(`fatal node error: ${err.message}`);
    this.reads.failAll(new ApiError("internal", `fatal node error: ${err.message}`));
    if (this.ticker) clearInterval(this.ticker);
    this.loopDelay.stop();
    for (const cb of this.fatalListeners) cb(err);
  }

  /**
   * Registers `cb` to run once when the node hits a fatal error (a storage error: it stops serving, never
   * serves wrong data). The entry point (node.ts) exits with status 1 on it, so a supervisor restarts or
   * flags the member instead of keeping a process that only answers 503/500.
   */
  onFatal(cb: (err: Error) => void): void {
    if (this.fatal) cb(this.fatal);
    else this.fatalListeners.push(cb);
  }

  // ---------------------------------------------------------------------------------------------------
  // Proposals and reads

  private checkServing(): void {
    if (this.fatal) throw new ApiError("internal", `the node stopped after a fatal error: ${this.fatal.message}`);
    if (this.stopped) throw new ApiError("unavailable", "the node is shutting down", { retryAfterSec: 1 });
    if (this.removed) throw new ApiError("not_member", `node ${this.id} is no longer a member of the cluster`, this.leaderDetails());
  }

  /**
   * A node outside its known configuration (started to be added, not added yet) holds no data and gets no
   * answer to a ReadIndex from the leader: reads (stale ones too: they answered 404 for every key) and
   * watches fail now with `not_member`, so that clients try another endpoint (B6, U5).
   */
  private checkHoldsData(): void {
    if (!this.wasMember) throw new ApiError("not_member", `node ${this.id} is not in the cluster's configuration yet, so it holds no data and cannot confirm a read; ask a member`, this.leaderDetails());
  }

  private leaderDetails(): { leader?: { id: string; clientUrl: string }; retryAfterSec?: number } {
    const leaderId = this.raft.status().leaderId;
    if (!leaderId) return { retryAfterSec: 1 };
    return { leader: { id: leaderId, clientUrl: memberAddresses(this.kv)[leaderId]?.clientUrl ?? "" }, retryAfterSec: 1 };
  }

  /**
   * Proposes a KV request and waits for it to apply; maps every failure to ApiError. `maxAnswerBytes`
   * (bytes) travels in the command: apply refuses the request's reads past it (Command.maxAnswerBytes).
   */
  private async propose(request: KvRequest, opts: WriteOptions = {}, maxAnswerBytes?: number): Promise<KvResult> {
    this.checkServing();
    if (this.proposals.size >= this.config.queueDepth) throw new ApiError("too_many_requests", `more than ${this.config.queueDepth} proposals are pending`, { retryAfterSec: 1 });
    if (opts.signal?.aborted) throw new ApiError("timeout", "the request deadline passed before it was proposed");
    let at: { index: number; term: number };
    const proposedMs = performance.now();
    try {
      at = this.raft.propose(encodeCommand({ request, ...(opts.session ? { session: opts.session } : {}), ...(maxAnswerBytes !== undefined ? { maxAnswerBytes } : {}) }));
    } catch (err) {
      throw this.raftError(err);
    }
    this.schedule();
    const outcome = await this.proposals.wait(at.index, at.term, opts.signal, proposedMs);
    if (outcome.kind === "dropped") throw new ApiError("unavailable", "leadership changed and the request was not committed; it is safe to retry", { retryAfterSec: 1 });
    if (outcome.kind === "unknown") throw new ApiError("outcome_unknown", outcome.reason);
    if (outcome.entry.error) throw toApiError(outcome.entry.error);
    return outcome.entry.result!;
  }

  /** Fire-and-forget proposal of the node's own (lease expiry): failures are retried by the Lessor. */
  private proposeQuietly(request: KvRequest): void {
    try {
      this.raft.propose(encodeCommand({ request }));
      this.schedule();
    } catch {
      // Not leader any more or a transfer in flight: the Lessor reports the ids again after retryMs.
    }
  }

  private raftError(err: unknown): ApiError {
    if (err instanceof NotLeaderError) {
      if (!err.leaderId) return new ApiError("no_leader", "no leader is known; retry shortly", { retryAfterSec: 1 });
      return new ApiError("not_leader", err.message, this.leaderDetails());
    }
    return toApiError(err);
  }

  /** Waits until a linearizable read may be served here (ReadIndex, Raft thesis §6.4). */
  private async readBarrier(opts: ReadOptions = {}): Promise<void> {
    this.checkServing();
    this.checkHoldsData();
    if ((opts.consistency ?? "linearizable") === "stale") return;
    // >>> EDGEKV_UNSAFE_BUG (test only: test/nemesis/stale-read.test.ts proves the nemesis checker catches
    // stale reads). With EDGEKV_UNSAFE_BUG=local-reads every read skips the ReadIndex barrier and is served
    // from local state, which a deposed leader may hold stale. Unreachable without the env var.
    if (UNSAFE_BUG === "local-reads") return;
    // <<< EDGEKV_UNSAFE_BUG
    if (this.reads.size >= this.config.queueDepth) throw new ApiError("too_many_requests", `more than ${this.config.queueDepth} reads are pending`, { retryAfterSec: 1 });
    const id = this.reads.nextId();
    const done = this.reads.wait(id, opts.signal);
    try {
      this.raft.readIndex(id);
    } catch (err) {
      this.reads.fail(id, this.raftError(err));
    }
    this.schedule();
    try {
      await done;
    } catch (err) {
      throw toApiError(err);
    }
  }

  // ---------------------------------------------------------------------------------------------------
  // KvService

  /** See KvService.put. */
  async put(req: PutRequest, opts?: WriteOptions): Promise<PutResult> {
    return (await this.propose(req, opts)) as PutResult;
  }

  /** See KvService.deleteRange. With `prevKv`, an answer above maxResponseBytes is refused before proposing (`checkAnswerSize`). */
  async deleteRange(req: DeleteRangeRequest, opts?: WriteOptions): Promise<DeleteResult> {
    this.checkAnswerSize(req);
    return (await this.propose(req, opts, answerCapToCarry(req, this.kv.limits, this.config.maxResponseBytes))) as DeleteResult;
  }

  /**
   * See KvService.txn. A txn whose reads would answer above maxResponseBytes is refused before proposing
   * (`checkAnswerSize`, an estimate on this node's state), and at apply when writes since then (or its own)
   * grew its reads past the cap it carries (`answerCapToCarry`, Command.maxAnswerBytes).
   */
  async txn(req: TxnRequest, opts?: WriteOptions): Promise<TxnResult> {
    this.checkAnswerSize(req);
    return (await this.propose(req, opts, answerCapToCarry(req, this.kv.limits, this.config.maxResponseBytes))) as TxnResult;
  }

  /**
   * `413 response_too_large` when the answer of `req` would be above `maxResponseBytes`, measured from
   * key and value lengths on this node's state before anything is read, proposed or encoded (src/kv/
   * answer-size.ts: a 48 MB answer held the event loop 10-13 s, docs/nemesis.md). A txn is measured on the
   * leader's state when proposed (an estimate); the exact check runs at apply against the cap carried in
   * the command, so every replica applies the same log whatever its own limit.
   */
  private checkAnswerSize(req: RangeRequest | DeleteRangeRequest | TxnRequest): void {
    try {
      this.kv.checkAnswerSize(req, this.config.maxResponseBytes);
    } catch (err) {
      throw toApiError(err);
    }
  }

  /** See KvService.range: ReadIndex by default; `stale` serves local state and reports how stale. */
  async range(req: RangeRequest, opts: ReadOptions = {}): Promise<ServiceRangeResult> {
    await this.readBarrier(opts);
    let result: ServiceRangeResult;
    try {
      this.kv.checkAnswerSize(req, this.config.maxResponseBytes);
      result = this.kv.range(req);
    } catch (err) {
      throw toApiError(err);
    }
    if ((opts.consistency ?? "linearizable") === "stale") {
      // The role field, not status(): status() copies the conf state and every follower's progress, which
      // showed in the profile of stale GETs (docs/bench.md, 2026-11-30).
      const isLeader = this.raft.role === "leader";
      const applied = this.kv.appliedIndex();
      result.stale = { appliedIndex: applied, stalenessMs: isLeader ? null : this.staleness.stalenessMs(Date.now(), applied) };
    }
    return result;
  }

  /** See KvService.leaseGrant. The id is drawn here when absent, then carried in the entry (deterministic apply). */
  async leaseGrant(req: { ttlSeconds: number; id?: number }, opts?: WriteOptions): Promise<LeaseGrantResult> {
    const id = req.id ?? randomLeaseId();
    return (await this.propose({ op: "leaseGrant", id, ttlSeconds: req.ttlSeconds }, opts)) as LeaseGrantResult;
  }

  /** See KvService.leaseKeepAlive: served by the leader's Lessor only (followers forward it). */
  async leaseKeepAlive(id: number, opts?: CallOptions): Promise<LeaseStatus> {
    await this.readBarrier({ signal: opts?.signal });
    this.requireLeader();
    try {
      const info = this.kv.leaseInfo(id);
      const ttl = this.lessor.keepAlive(id, performance.now());
      return { id, ttlSeconds: ttl, grantedTtlSeconds: info.ttlSeconds };
    } catch (err) {
      throw toApiError(err);
    }
  }

  /** See KvService.leaseRevoke. */
  async leaseRevoke(id: number, opts?: WriteOptions): Promise<LeaseRevokeResult> {
    return (await this.propose({ op: "leaseRevoke", id }, opts)) as LeaseRevokeResult;
  }

  /** See KvService.leaseTimeToLive: remaining TTL from the leader's Lessor (followers forward it). */
  async leaseTimeToLive(id: number, opts: ReadOptions & { keys?: boolean } = {}): Promise<LeaseStatus> {
    await this.readBarrier(opts);
    this.requireLeader();
    try {
      const info = this.kv.leaseInfo(id, opts.keys ?? false);
      const remaining = this.lessor.remainingMs(id, performance.now());
      const out: LeaseStatus = { id, ttlSeconds: Math.ceil(remaining / 1000), grantedTtlSeconds: info.ttlSeconds };
      if (info.keys) out.keys = info.keys;
      return out;
    } catch (err) {
      throw toApiError(err);
    }
  }

  private requireLeader(): void {
    if (this.raft.status().role !== "leader") throw this.raftError(new NotLeaderError(this.raft.status().leaderId));
  }

  /** See KvService.watch: served locally from the applied history (any member). */
  async watch(req: WatchRequest, opts: CallOptions = {}): Promise<AsyncIterable<WatchMessage>> {
    this.checkServing();
    this.checkHoldsData();
    const signal = opts.signal ?? new AbortController().signal;
    try {
      return openWatch(this.kv, this.hub, req, signal, 5000);
    } catch (err) {
      throw toApiError(err);
    }
  }

  /** See KvService.compact. */
  async compact(revision: number, opts?: WriteOptions): Promise<CompactResult> {
    return (await this.propose({ op: "compact", revision }, opts)) as CompactResult;
  }

  /** See KvService.cluster. */
  async cluster(): Promise<ClusterView> {
    return clusterView(this.id, this.config.clusterId, this.raft.status(), this.kv, this.transport.peerStatus());
  }

  /** See KvService.addLearner: proposes the conf change with the member's URLs as its context. */
  async addLearner(id: string, peerUrl: string, clientUrl: string, opts?: CallOptions): Promise<ClusterView> {
    const cs = this.raft.status().confState;
    if ([...cs.voters, ...cs.learners, ...cs.votersOutgoing].includes(id)) throw new ApiError("conflict", `member ${id} already exists`);
    const sameUrl = Object.entries(memberAddresses(this.kv)).find(([, a]) => a.peerUrl === peerUrl);
    if (sameUrl) throw new ApiError("conflict", `peer URL ${peerUrl} already belongs to member ${sameUrl[0]}`);
    await this.proposeConf({ steps: [{ type: "addLearner", nodeId: id, context: JSON.stringify({ peerUrl, clientUrl }) }] }, opts);
    return this.cluster();
  }

  /** See KvService.updateMember: an `update` conf change step carrying the URLs as its context. */
  async updateMember(id: string, peerUrl: string, clientUrl: string, opts?: CallOptions): Promise<ClusterView> {
    const cs = this.raft.status().confState;
    if (![...cs.voters, ...cs.learners].includes(id)) throw new ApiError("not_found", `${id} is not a member`);
    await this.proposeConf({ steps: [{ type: "update", nodeId: id, context: JSON.stringify({ peerUrl, clientUrl }) }] }, opts);
    return this.cluster();
  }

  /**
   * Makes the cluster record this node's advertised URLs (the bootstrap configuration carries peer URLs
   * only): once a leader is known and the applied member table differs, send the leader a member update,
   * at most one every few seconds. Runs from the tick timer; failures are retried on a later tick.
   */
  private announceSelf(): void {
    if (this.announcing || this.removed || this.fatal) return;
    const now = performance.now();
    if (now - this.lastAnnounceMs < ANNOUNCE_RETRY_MS) return;
    const st = this.raft.status();
    if (!st.leaderId || ![...st.confState.voters, ...st.confState.learners].includes(this.id)) return;
    const mine = memberAddresses(this.kv)[this.id];
    const want = { peerUrl: this.config.advertisePeerUrl, clientUrl: this.config.advertiseClientUrl };
    if (mine && mine.peerUrl === want.peerUrl && mine.clientUrl === want.clientUrl) return;
    this.announcing = true;
    this.lastAnnounceMs = now;
    const req = new Request(`http://edgekv.internal/v1/cluster/members/${encodeURIComponent(this.id)}`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(want),
    });
    this.fetch(req)
      .then(async (res) => {
        if (!res.ok) this.ports.log("debug", `announcing our URLs to the leader: ${res.status} ${await res.text()}`);
        else await res.body?.cancel();
      })
      .catch((err) => this.ports.log("debug", `announcing our URLs to the leader failed: ${(err as Error).message}`))
      .finally(() => {
        this.announcing = false;
      });
  }

  /** See KvService.promote. */
  async promote(id: string, opts?: CallOptions): Promise<ClusterView> {
    const st = this.raft.status();
    if (!st.confState.learners.includes(id)) throw new ApiError(st.confState.voters.includes(id) ? "bad_request" : "not_found", `${id} is not a learner`);
    const pr = st.progress?.[id];
    if (pr && st.commitIndex - pr.matchIndex > this.config.maxPayloadEntries) throw new ApiError("unavailable", `learner ${id} is not caught up yet (match ${pr.matchIndex}, commit ${st.commitIndex})`, { retryAfterSec: 1 });
    await this.proposeConf({ steps: [{ type: "promote", nodeId: id }] }, opts);
    return this.cluster();
  }

  /** See KvService.remove. */
  async remove(id: string, opts?: CallOptions): Promise<ClusterView> {
    const cs = this.raft.status().confState;
    if (![...cs.voters, ...cs.learners].includes(id)) throw new ApiError("not_found", `${id} is not a member`);
    await this.proposeConf({ steps: [{ type: "remove", nodeId: id }] }, opts);
    return this.cluster();
  }

  /** See KvService.transferLeader: returns once `id` leads or after 2 s with the view at that time. */
  async transferLeader(id: string, opts?: CallOptions): Promise<ClusterView> {
    this.checkServing();
    const cs = this.raft.status().confState;
    if (!cs.voters.includes(id)) throw new ApiError(cs.learners.includes(id) ? "bad_request" : "not_found", `${id} is not a voter`);
    try {
      this.raft.transferLeader(id);
    } catch (err) {
      throw this.raftError(err);
    }
    this.schedule();
    const until = performance.now() + TRANSFER_WAIT_MS;
    while (performance.now() < until && this.raft.status().leaderId !== id && !opts?.signal?.aborted) await sleep(20);
    return this.cluster();
  }

  private async proposeConf(cc: ConfChange, opts: CallOptions = {}): Promise<void> {
    this.checkServing();
    let at: { index: number; term: number };
    try {
      at = this.raft.proposeConfChange(cc);
    } catch (err) {
      throw this.raftError(err);
    }
    this.schedule();
    const outcome = await this.proposals.wait(at.index, at.term, opts.signal);
    if (outcome.kind === "dropped") throw new ApiError("unavailable", "leadership changed and the membership change was not committed; retry", { retryAfterSec: 1 });
    if (outcome.kind === "unknown") throw new ApiError("outcome_unknown", outcome.reason);
  }

  /** See KvService.health: the process serves (no leader needed). */
  async health(): Promise<HealthStatus> {
    if (this.fatal) return { ok: false, reason: `fatal error: ${this.fatal.message}` };
    return { ok: true, details: { id: this.id } };
  }

  /**
   * See KvService.readiness and src/server/readiness.ts: a member with a leader it heard within the
   * election timeout, whose stream to that leader is up, applied to within `readyLagEntriesMax` of the
   * leader's commit index. Reasons are stable codes (docs/api.md "Health").
   */
  async readiness(): Promise<HealthStatus> {
    const st = this.raft.status();
    return readinessOf({
      id: this.id,
      isLeader: st.role === "leader",
      leaderId: st.leaderId,
      commitIndex: st.commitIndex,
      appliedIndex: this.kv.appliedIndex(),
      leaderCommitIndex: this.leaderCommitSeen,
      fatal: this.fatal !== undefined,
      removed: this.removed,
      notYetMember: !this.wasMember,
      sinceLeaderHeardMs: this.lastLeaderContactMs === null ? null : Date.now() - this.lastLeaderContactMs,
      leaderStreamDownMs: st.leaderId && st.leaderId !== this.id ? this.reachability.downForMs(st.leaderId, performance.now()) : 0,
      electionTimeoutMs: this.config.electionTimeoutMsMax,
      lagEntriesMax: this.config.readyLagEntriesMax,
    });
  }

  /** See KvService.metricsText. */
  async metricsText(): Promise<string> {
    return nodeMetricsText({
      status: this.raft.status(),
      appliedIndex: this.kv.appliedIndex(),
      revision: this.kv.revision(),
      proposalsPending: this.proposals.size,
      readsPending: this.reads.size,
      watchers: this.hub.parked,
      peers: this.transport.peerStatus(),
      fsync: this.fsyncSeconds.snapshot(),
      roundTrips: this.appendRoundTrips.snapshot(),
      proposalCommit: this.commitSeconds.snapshot(),
      leaderChangesSeen: this.leaderChangesSeen,
      readysPipelined: this.readysPipelined,
      walSyncs: { ...this.walSyncCounts },
      loopDelay: this.loopDelay.snapshot(),
    });
  }

  /** Which client requests must run on the leader: every write, lease keepalive/TTL, and `lease` reads. */
  private needsLeader(request: Request): boolean {
    const method = request.method;
    // No URL object: one per request was a visible cost on the read path (docs/bench.md, 2026-11-30).
    const { path, query } = splitRequestUrl(request.url);
    if (method === "GET" && path.startsWith("/v1/cluster")) return false;
    if (method !== "GET" && method !== "HEAD") return path.startsWith("/v1/");
    if (path.startsWith("/v1/leases/")) return true;
    return query.includes("lease") && new URLSearchParams(query).get("consistency") === "lease";
  }
}

/** Request headers a forward does not carry: connection-specific, recomputed, the peer secret, our own marks. */
const UNFORWARDED_HEADERS = new Set(["host", "connection", "keep-alive", "transfer-encoding", "content-length", "authorization", "upgrade", "te", "proxy-connection"]);

/** A client request as a `ForwardCall` (src/server/transport.ts): path and query as sent, end-to-end headers, the body read. */
function forwardCallOf(request: Request, body: Uint8Array | undefined): ForwardCall {
  const { path, query } = splitRequestUrl(request.url);
  const headers: [string, string][] = [];
  request.headers.forEach((v, k) => {
    if (!UNFORWARDED_HEADERS.has(k) && !k.startsWith("x-edgekv-")) headers.push([k, v]);
  });
  return body ? { method: request.method, path: query ? `${path}?${query}` : path, headers, body } : { method: request.method, path: query ? `${path}?${query}` : path, headers };
}

/** The leader's answer to a forwarded call as the client's response (no body for 204/304, as HTTP requires). */
function replyResponse(reply: ForwardReply): Response {
  const noBody = reply.status === 204 || reply.status === 304;
  return new Response(noBody ? null : (reply.body as Uint8Array<ArrayBuffer>), { status: reply.status, headers: reply.headers });
}

/** Name of the file in the data dir that says which node's state it holds (written once state exists). */
const MARKER_FILE = "edgekv-node.json";

/**
 * Refuses to open a database whose `-wal` file holds a committed transaction that SQLite's recovery would
 * drop without a word (src/kv/wal-scan.ts: damage inside the file, not a cut-short tail). Runs before SQLite
 * opens the file, because the first write after recovery may overwrite the evidence. Reads the file in
 * 1 MiB chunks (the WAL is bounded at about 64 MiB by the checkpointer). Throws an Error whose message
 * starts with `wal_damaged:` and says how to rejoin, as a damaged database does.
 */
function checkWalFile(files: SnapshotFiles, walPath: string, nodeId: string): void {
  if (!files.exists(walPath)) return;
  const scanner = new WalScanner();
  files.forEachChunk(walPath, 1 << 20, (chunk) => scanner.push(chunk));
  const scan = scanner.result();
  if (!scan.damaged) return;
  throw new Error(
    `wal_damaged: ${walPath} is damaged: frame ${scan.firstRejected} fails its checksum and ${scan.commitsAfterRejected} committed ` +
      `transaction(s) follow it, which SQLite would drop without a word (this member may have acknowledged them). Keep the ` +
      `file for inspection, and do not start this data dir again: remove this member (DELETE /v1/cluster/members/${nodeId} on ` +
      `another member), then start it with an empty data dir and add it back as a learner (docs/storage.md).`,
  );
}

/** Contents of the data dir marker. */
interface DataDirMarker {
  nodeId: string;
  clusterId: string;
  createdAt: string;
}

function readMarker(files: SnapshotFiles, dataDir: string): DataDirMarker | undefined {
  const text = files.readText(`${dataDir}/${MARKER_FILE}`);
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as DataDirMarker;
  } catch {
    throw new Error(`${dataDir}/${MARKER_FILE} is unreadable; it records which node owns this data dir`);
  }
}

function errorJson(err: ApiError): Response {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (err.retryAfterSec !== undefined) headers["retry-after"] = String(err.retryAfterSec);
  return new Response(JSON.stringify(err.toJSON()), { status: err.status, headers });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A random positive lease id below 2^53 (ids are JSON-safe integers; etcd uses int64). */
function randomLeaseId(): number {
  const [hi, lo] = crypto.getRandomValues(new Uint32Array(2));
  return ((hi & 0x1fffff) * 2 ** 32 + lo) || 1;
}

/**
 * When a majority of a configuration was last heard from: the ⌊n/2⌋+1-th latest of `heardAtMs` (one wall-clock
 * ms per voter, 0 = never heard), i.e. the latest time by which a quorum had been heard. 0 when no quorum was
 * ever heard or the configuration is empty. Raft's majority rule (Raft thesis §3.6), applied to contact times.
 */
export function quorumHeardAtMs(heardAtMs: number[]): number {
  if (heardAtMs.length === 0) return 0;
  const sorted = [...heardAtMs].sort((a, b) => b - a);
  return sorted[Math.floor(heardAtMs.length / 2)]!;
}

async function* toAsync(chunks: Iterable<Uint8Array>): AsyncIterable<Uint8Array> {
  for (const c of chunks) yield c;
}

function describeRef(m: InstallSnapshotMessage): string {
  try {
    return parseSnapshotRef(m.snapshot.data).name;
  } catch {
    return "(unreadable reference)";
  }
}

export type { AppliedEntry };
