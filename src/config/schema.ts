/**
 * The node configuration: one flat table of fields, each with its zod schema, default, unit and help text.
 * Defaults are the design seed (DESIGN.md "Configuration defaults"); docs/configuration.md is generated
 * from the same facts (`configHelp()`). Flat on purpose: every field maps 1:1 to an environment variable
 * (`EDGEKV_` + UPPER_SNAKE) and a flag (`--` + kebab-case), with no nesting rules to learn.
 */
import { z } from "zod";
import { ANSWER_KEY_OVERHEAD_BYTES } from "../kv/answer-size.ts";
import { MEMBER_ID_RE } from "../api/member-input.ts";

/** How string sources (env, flags) are turned into typed values before the field schema checks them. */
export type FieldKind = "string" | "int" | "number" | "boolean" | "enum" | "peers";

/** One configuration field. `default` is used when no source sets it (`undefined` = required or derived). */
export interface FieldSpec {
  kind: FieldKind;
  schema: z.ZodType;
  default: unknown;
  /** Unit shown in help (ms, bytes, entries, ...), or "" when none. */
  unit: string;
  help: string;
}

const MIB = 1024 * 1024;
const port = z.number().int().min(1).max(65535);
const positiveInt = z.number().int().positive();
const ms = z.number().int().positive();
const url = z.string().regex(/^https?:\/\/[^/\s]+\/?$/, "must be a base URL like http://host:port");
/**
 * A member's peer URL: h2c only (the peer transport speaks HTTP/2 without TLS, docs/peer-protocol.md; on
 * Fly.io the private network is WireGuard-encrypted), and a real port (0 would mean "any port" to a listener
 * but is no address to dial).
 */
const peerUrl = z
  .string()
  .regex(/^http:\/\/[^/\s]+\/?$/, "must be a base URL like http://host:port (peers speak HTTP/2 without TLS: https:// is not supported)")
  .refine((u) => !/:0+\/?$/.test(u), "port 0 is no address to dial: give the member's peer port");
const ratio = z.number().min(0).max(1);

/**
 * Every field of `Config`, in help order. Derived defaults (marked `undefined` here) are computed by
 * `loadConfig`: clientHost/peerHost are 127.0.0.1 locally and `::` on Fly.io (FLY_APP_NAME set); the
 * advertised URLs default from the listen ports (on Fly: `<FLY_MACHINE_ID>.vm.<FLY_APP_NAME>.internal`).
 */
export const CONFIG_FIELDS = {
  nodeId: { kind: "string", schema: z.string().regex(MEMBER_ID_RE, "must be 1-64 of A-Z a-z 0-9 _ . -, not . or .."), default: undefined, unit: "", help: "this member's stable id (node.ts: n1 when not given; on Fly.io defaults to FLY_MACHINE_ID; set it for every member of a multi-node cluster)" },
  clusterId: { kind: "string", schema: z.string().min(1).max(128), default: "edgekv", unit: "", help: "cluster id every peer request carries; peers of another cluster are refused (on Fly.io defaults to FLY_APP_NAME)" },
  clusterSecret: { kind: "string", schema: z.string().max(512), default: "", unit: "", help: "shared secret authenticating peer requests (required, at least 16 characters, on Fly.io; may be empty locally)" },
  dataDir: { kind: "string", schema: z.string().min(1), default: "./data", unit: "path", help: "directory of the node's SQLite file and snapshots" },
  clientHost: { kind: "string", schema: z.string().min(1), default: undefined, unit: "", help: "client API listen address (default 127.0.0.1; :: on Fly.io)" },
  clientPort: { kind: "int", schema: port, default: 8080, unit: "", help: "client API listen port" },
  peerHost: { kind: "string", schema: z.string().min(1), default: undefined, unit: "", help: "peer (HTTP/2 h2c) listen address (default 127.0.0.1; :: on Fly.io)" },
  peerPort: { kind: "int", schema: port, default: 7000, unit: "", help: "peer (HTTP/2 h2c) listen port" },
  advertiseClientUrl: { kind: "string", schema: url, default: undefined, unit: "url", help: "client URL other members hand to clients (default from client host/port)" },
  advertisePeerUrl: { kind: "string", schema: peerUrl, default: undefined, unit: "url", help: "peer URL other members dial (default from peer host/port)" },
  peers: { kind: "peers", schema: z.record(z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/), peerUrl), default: {}, unit: "id=url,...", help: "initial members and their peer URLs, e.g. n1=http://10.0.0.1:7000,n2=http://10.0.0.2:7000" },
  bootstrap: { kind: "boolean", schema: z.boolean(), default: false, unit: "", help: "first start of a brand-new cluster: form it from `peers` (ignored once the data dir holds state)" },
  heartbeatIntervalMs: { kind: "int", schema: ms, default: 150, unit: "ms", help: "leader heartbeat interval" },
  electionTimeoutMsMin: { kind: "int", schema: ms, default: 300, unit: "ms", help: "lower bound of the randomized election timeout" },
  electionTimeoutMsMax: { kind: "int", schema: ms, default: 600, unit: "ms", help: "upper bound of the randomized election timeout" },
  tickMs: { kind: "int", schema: ms, default: 50, unit: "ms", help: "length of one Raft tick (the core counts time in ticks)" },
  snapshotEntries: { kind: "int", schema: positiveInt, default: 100_000, unit: "entries", help: "record a compaction point after this many applied entries (etcd's --snapshot-count default); the log keeps min(this, 5000) entries behind it; a snapshot file is made only when a follower needs one" },
  snapshotIntervalMs: { kind: "int", schema: ms, default: 3_600_000, unit: "ms", help: "record a compaction point at least this often" },
  snapshotOffLoopBytes: { kind: "int", schema: z.number().int().min(0), default: 16 * MIB, unit: "bytes", help: "a snapshot file of a database at least this large is made on a worker thread (its own connection) so writes go on meanwhile; smaller ones in place (0 = always on a worker)" },
  maxPayloadEntries: { kind: "int", schema: positiveInt, default: 1000, unit: "entries", help: "most entries in one AppendEntries" },
  readyLagEntriesMax: { kind: "int", schema: z.number().int().min(0), default: 1000, unit: "entries", help: "GET /readyz answers 503 catching_up while the applied index is more than this many entries behind the leader's commit index (one AppendEntries' worth by default)" },
  replicationTimeoutMs: { kind: "int", schema: ms, default: 5000, unit: "ms", help: "give up on a replication round trip after this long" },
  peerReconnectMsMin: { kind: "int", schema: ms, default: 1000, unit: "ms", help: "first peer reconnect backoff (doubles, with jitter)" },
  peerReconnectMsMax: { kind: "int", schema: ms, default: 60_000, unit: "ms", help: "largest peer reconnect backoff" },
  maxFrameBytes: { kind: "int", schema: z.number().int().min(64 * 1024).max(1024 * MIB), default: 16 * MIB, unit: "bytes", help: "largest peer frame accepted or sent" },
  requestTimeoutMs: { kind: "int", schema: ms, default: 30_000, unit: "ms", help: "client request deadline" },
  maxConnections: { kind: "int", schema: positiveInt, default: 10_000, unit: "connections", help: "most concurrent client connections" },
  maxWatches: { kind: "int", schema: positiveInt, default: 4096, unit: "watches", help: "most open watch streams per node; past it clients get 429" },
  queueDepth: { kind: "int", schema: positiveInt, default: 1000, unit: "requests", help: "most queued proposals; past it clients get 429/503" },
  maxKeyBytes: { kind: "int", schema: positiveInt, default: 4096, unit: "bytes", help: "largest key" },
  maxValueBytes: { kind: "int", schema: positiveInt, default: MIB, unit: "bytes", help: "largest value" },
  maxResponseBytes: { kind: "int", schema: z.number().int().min(64 * 1024), default: 16 * MIB, unit: "bytes", help: "largest answer of a range or txn read (key + value bytes, plus 64 per key; at least maxKeyBytes + maxValueBytes + 64); a larger one is refused with 413 response_too_large before it is read (use limit and paging)" },
  readOnly: { kind: "enum", schema: z.enum(["safe", "lease"]), default: "safe", unit: "", help: "linearizable read mode: safe (ReadIndex quorum round) or lease (leader lease)" },
  alertP50Ms: { kind: "number", schema: z.number().positive(), default: 10, unit: "ms", help: "alert when p50 request latency exceeds this" },
  alertP99Ms: { kind: "number", schema: z.number().positive(), default: 100, unit: "ms", help: "alert when p99 request latency exceeds this" },
  alertP999Ms: { kind: "number", schema: z.number().positive(), default: 500, unit: "ms", help: "alert when p99.9 request latency exceeds this" },
  alertErrorRateWarn: { kind: "number", schema: ratio, default: 0.001, unit: "ratio", help: "warn when the error rate exceeds this (0.001 = 0.1 %)" },
  alertErrorRateCritical: { kind: "number", schema: ratio, default: 0.01, unit: "ratio", help: "critical when the error rate exceeds this (0.01 = 1 %)" },
  logLevel: { kind: "enum", schema: z.enum(["debug", "info", "warn", "error"]), default: "info", unit: "", help: "least severe log level printed" },
} satisfies Record<string, FieldSpec>;

/** A configuration field name. */
export type ConfigKey = keyof typeof CONFIG_FIELDS;

/** The fully resolved node configuration (every field set). Times in ms, sizes in bytes. */
export interface Config {
  nodeId: string;
  clusterId: string;
  clusterSecret: string;
  dataDir: string;
  clientHost: string;
  clientPort: number;
  peerHost: string;
  peerPort: number;
  advertiseClientUrl: string;
  advertisePeerUrl: string;
  peers: Record<string, string>;
  bootstrap: boolean;
  heartbeatIntervalMs: number;
  electionTimeoutMsMin: number;
  electionTimeoutMsMax: number;
  tickMs: number;
  snapshotEntries: number;
  snapshotIntervalMs: number;
  snapshotOffLoopBytes: number;
  maxPayloadEntries: number;
  /** `/readyz` lag bound, entries (src/server/readiness.ts `catching_up`). */
  readyLagEntriesMax: number;
  replicationTimeoutMs: number;
  peerReconnectMsMin: number;
  peerReconnectMsMax: number;
  maxFrameBytes: number;
  requestTimeoutMs: number;
  maxConnections: number;
  maxWatches: number;
  queueDepth: number;
  maxKeyBytes: number;
  maxValueBytes: number;
  /** Largest answer of a range / txn read, bytes (key + value bytes + 64 per key; src/kv/answer-size.ts). */
  maxResponseBytes: number;
  readOnly: "safe" | "lease";
  alertP50Ms: number;
  alertP99Ms: number;
  alertP999Ms: number;
  alertErrorRateWarn: number;
  alertErrorRateCritical: number;
  logLevel: "debug" | "info" | "warn" | "error";
}

/** `EDGEKV_` + UPPER_SNAKE of a field name, e.g. `peerPort` -> `EDGEKV_PEER_PORT`. */
export function envName(key: string): string {
  return "EDGEKV_" + key.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toUpperCase();
}

/** `--` + kebab-case of a field name, e.g. `electionTimeoutMsMin` -> `--election-timeout-ms-min`. */
export function flagName(key: string): string {
  return "--" + key.replace(/([a-z0-9])([A-Z])/g, "$1-$2").toLowerCase();
}

/**
 * Checks rules that tie fields together; returns `[field, message]` for the first one broken, or undefined.
 * Election timeout must exceed the heartbeat (Raft paper §5.6: broadcastTime << electionTimeout); the answer
 * cap must hold the largest one-key answer (maxResponseBytes >= maxKeyBytes + maxValueBytes + 64 bytes).
 */
export function crossFieldProblem(c: Config): [ConfigKey, string] | undefined {
  if (c.electionTimeoutMsMax < c.electionTimeoutMsMin) return ["electionTimeoutMsMax", `must be >= electionTimeoutMsMin (${c.electionTimeoutMsMin})`];
  if (c.electionTimeoutMsMin <= c.heartbeatIntervalMs) return ["electionTimeoutMsMin", `must be > heartbeatIntervalMs (${c.heartbeatIntervalMs})`];
  if (c.heartbeatIntervalMs < c.tickMs) return ["heartbeatIntervalMs", `must be >= tickMs (${c.tickMs})`];
  if (c.peerReconnectMsMax < c.peerReconnectMsMin) return ["peerReconnectMsMax", `must be >= peerReconnectMsMin (${c.peerReconnectMsMin})`];
  if (c.alertErrorRateCritical < c.alertErrorRateWarn) return ["alertErrorRateCritical", `must be >= alertErrorRateWarn (${c.alertErrorRateWarn})`];
  // A one-key GET answers up to maxKeyBytes + maxValueBytes + ANSWER_KEY_OVERHEAD_BYTES (src/kv/answer-size.ts):
  // a smaller answer cap accepted writes that no read could ever return (413 on GET, docs/nemesis.md).
  const oneKeyAnswerBytes = c.maxKeyBytes + c.maxValueBytes + ANSWER_KEY_OVERHEAD_BYTES;
  if (c.maxResponseBytes < oneKeyAnswerBytes) {
    return ["maxResponseBytes", `must be >= maxKeyBytes + maxValueBytes + ${ANSWER_KEY_OVERHEAD_BYTES} (${oneKeyAnswerBytes}), or a key once written could not be read back; lower maxValueBytes to use a smaller cap`];
  }
  // One listener per address: the second bind fails after the node has already joined and voted.
  const wildcard = (h: string) => h === "::" || h === "0.0.0.0" || h === "";
  if (c.clientPort === c.peerPort && (c.clientHost.toLowerCase() === c.peerHost.toLowerCase() || wildcard(c.clientHost) || wildcard(c.peerHost))) {
    return ["peerPort", `must differ from clientPort (${c.clientPort}) while both listen on one address (clientHost ${c.clientHost}, peerHost ${c.peerHost})`];
  }
  return undefined;
}
