/**
 * The peer transport port: how the node (src/server/node.ts) exchanges Raft messages, snapshots and
 * forwarded client requests with the other members. The node calls only this interface; the
 * implementation lives in runtime-adapters/ (HTTP/2 cleartext, docs/peer-protocol.md). Also holds the
 * wire constants and the small pure rules (backoff, peer state) shared by implementations and tests.
 */
import type { Message, NodeId, SnapshotMeta } from "../raft/types.ts";

/**
 * Health of one peer as seen from this node (DESIGN.md "Peers": a peer that misses 3 heartbeats is
 * suspect). Based on the last frame heard from the peer — every member sends every peer at least an empty
 * keepalive frame each heartbeat interval, so followers that exchange no Raft messages still see each other.
 */
export type PeerState = "connecting" | "connected" | "suspect" | "failed";

/** One peer's entry in `PeerTransport.peerStatus()`. Times are wall-clock ms (the transport's `now()`). */
export interface PeerStatus {
  /** See `peerStateOf`. */
  state: PeerState;
  /** When a frame (or a connection acceptance) was last heard from the peer; 0 = never. */
  lastHeardMs: number;
  /** Peer base URL in use, e.g. `http://127.0.0.1:7001`. */
  url: string;
  /** State of our outbound stream to the peer. */
  outbound: "connecting" | "open" | "backoff" | "closed";
  /** Batches waiting in the bounded send queue. */
  queuedBatches: number;
  /**
   * Bytes waiting to leave for this peer: the send queue's frames plus what the outbound stream buffers
   * while HTTP/2 flow control or the socket pushes back. Absent from transports that do not measure it.
   */
  queuedBytes?: number;
  /** Batches written to the outbound stream since start. */
  sentBatches: number;
  /** Batches dropped because the queue was full or a single message exceeded the frame limit. */
  droppedBatches: number;
  /** Non-empty batches received from the peer since start. */
  receivedBatches: number;
  /** Successful (re)connections of the outbound stream. */
  connects: number;
  /** Last connection failure or refusal, e.g. `unauthorized: cluster secret does not match`; "" = none. */
  lastError: string;
}

/**
 * What a peer transport is created with (the `createPeerTransport` port of src/server/node.ts, which fills
 * every field from the node's configuration; an adapter may take more, e.g. `Http2PeerTransportOptions` in
 * runtime-adapters/shared/peer-http2.ts). Times in ms, sizes in bytes.
 */
export interface PeerTransportOptions {
  nodeId: NodeId;
  clusterId: string;
  /** Shared secret every peer request carries (docs/peer-protocol.md "Admission"). */
  clusterSecret: string;
  /** Listen address and port (0 = any free port). */
  host: string;
  port: number;
  /** Heartbeat interval: keepalive frames go out this often; peer state thresholds are multiples of it. */
  heartbeatIntervalMs: number;
  /** Reconnect backoff bounds (config peerReconnectMsMin/Max; defaults 1000 / 60000). */
  reconnectMsMin?: number;
  reconnectMsMax?: number;
  /** Largest frame sent or accepted (default 16 MiB). */
  maxFrameBytes?: number;
  /** Log sink (default: warn and error to the console). */
  log?: (level: "debug" | "info" | "warn" | "error", message: string) => void;
}

/**
 * Duties, to be correct (docs/peer-protocol.md):
 * - `send` never blocks or throws; per-peer order is kept; memory is bounded (oldest batches dropped and
 *   counted when the queue is full — Raft retransmits, so loss is safe, reordering would not be).
 * - Every outgoing request carries the protocol version, cluster id and cluster secret; an incoming request
 *   without matching ones is refused with a status and a JSON error code, and never reaches a handler.
 * - Entry `data` handed to `onMessages` handlers are views into the received frame; the transport never
 *   reuses that memory.
 * - A handler's throw is logged and does not break the stream.
 */
export interface PeerTransport {
  /** Queue a batch for `to`; never blocks or throws; bounded per-peer queue (oldest dropped when full, counted in stats). Messages to one peer are delivered in order. Unknown `to` (not in setPeers) is dropped and counted nowhere. */
  send(to: NodeId, messages: Message[]): void;
  /** Replace the member list: peer id -> base URL (e.g. `http://127.0.0.1:7001`). Connects to new peers, drops removed ones, reconnects changed URLs. Our own id is ignored. */
  setPeers(peers: Record<NodeId, string>): void;
  /** Set the receiver of incoming batches (one handler; a later call replaces it). Called synchronously per frame, never with an empty batch. */
  onMessages(handler: (from: NodeId, messages: Message[]) => void): void;
  /** Stream a snapshot file to `to` on its own stream, in chunks; resolves when the receiver's handler resolved (stored it); rejects on refusal, handler failure or disconnect. */
  sendSnapshot(to: NodeId, meta: SnapshotMeta, chunks: AsyncIterable<Uint8Array>): Promise<void>;
  /** Set the receiver of snapshots. `chunks` ends normally only when the sender finished; a broken stream makes it throw. */
  onSnapshot(handler: (from: NodeId, meta: SnapshotMeta, chunks: AsyncIterable<Uint8Array>) => Promise<void>): void;
  /** Forward a client HTTP request to a peer (the leader) on its own stream, return its response (body streamed). Throws `PeerRequestError` on a transport failure or a refusal by the peer's transport. */
  forward(to: NodeId, request: Request, signal?: AbortSignal): Promise<Response>;
  /** Set the handler of forwarded requests (the local client API). Its `request.url` path and query are the original ones. */
  onForward(handler: (request: Request) => Promise<Response>): void;
  /**
   * Forward one small client request whose response is not streamed (a write) to a peer (the leader), and
   * return the peer handler's whole response. Calls to one peer made in the same event-loop turn share one
   * stream (a forward batch, docs/peer-protocol.md "Forward batches"); each is answered on its own, as soon
   * as the peer's handler answered it. Served on the peer by the `onForward` handler, like `forward`.
   * Throws `PeerRequestError`: code `reset` when the exchange broke after the call was sent (the peer may
   * have applied it), any other code when the call never reached the peer's handler (not connected,
   * refused by its transport). An aborted `signal` rejects with the signal's reason.
   */
  forwardCall(to: NodeId, call: ForwardCall, signal?: AbortSignal): Promise<ForwardReply>;
  /** Status of every peer in the member list. */
  peerStatus(): Record<NodeId, PeerStatus>;
  /** Start the server; resolves with the URL it listens on (actual port when 0 was asked). */
  listen(): Promise<{ url: string }>;
  /** Stop the server and every connection and timer; pending sends are dropped. Idempotent. */
  close(): Promise<void>;
}

/**
 * A client request as `PeerTransport.forwardCall` carries it. `path` is the path and query as the client
 * sent them (e.g. `/v1/kv/a?lease=5`); `headers` are [name, value] pairs, names lower-case, without
 * hop-by-hop headers, `authorization` or `x-edgekv-*`; `body` is absent for no body.
 */
export interface ForwardCall {
  method: string;
  path: string;
  headers: [string, string][];
  body?: Uint8Array;
}

/** The peer handler's answer to a `ForwardCall`: status, [name, value] header pairs, whole body (bytes). */
export interface ForwardReply {
  status: number;
  headers: [string, string][];
  body: Uint8Array;
}

/** A peer request failed: not connected, refused (code from the peer's JSON error), reset or aborted. */
export class PeerRequestError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "PeerRequestError";
  }
}

/** Request paths of the peer protocol (version 1). */
export const PEER_PATHS = { stream: "/peer/v1/stream", snapshot: "/peer/v1/snapshot", forward: "/peer/v1/forward", forwardBatch: "/peer/v1/forward-batch" } as const;

/** Header names of the peer protocol; `authorization` carries `Bearer <cluster secret>`. */
export const PEER_HEADERS = {
  protocol: "x-edgekv-protocol",
  cluster: "x-edgekv-cluster",
  from: "x-edgekv-from",
  to: "x-edgekv-to",
  snapshotMeta: "x-edgekv-snapshot-meta",
  forwardMethod: "x-edgekv-forward-method",
  forwardPath: "x-edgekv-forward-path",
  /** Set on responses produced by the peer transport itself (not the forwarded handler): the error code. */
  peerError: "x-edgekv-peer-error",
} as const;

/**
 * Reconnect delay after `attempt` consecutive failures (0-based): `min * 2^attempt` capped at `max`, then
 * scaled by a jitter factor in [0.5, 1) so that peers restarting together do not reconnect in lockstep
 * ("equal jitter", AWS architecture blog on backoff). `random()` returns [0, 1). Result in ms.
 */
export function backoffDelayMs(attempt: number, minMs: number, maxMs: number, random: () => number): number {
  const exp = Math.min(maxMs, minMs * 2 ** Math.min(attempt, 30));
  return Math.max(1, Math.round(exp * (0.5 + random() / 2)));
}

/**
 * A peer's state from how long ago it was last heard (ms): within `suspectAfterMs` connected, within
 * `failedAfterMs` suspect, else failed. Never heard: connecting until `failedAfterMs` after `sinceMs`
 * (when the peer was added), then failed.
 */
export function peerStateOf(nowMs: number, lastHeardMs: number, sinceMs: number, suspectAfterMs: number, failedAfterMs: number): PeerState {
  if (lastHeardMs === 0) return nowMs - sinceMs < failedAfterMs ? "connecting" : "failed";
  const age = nowMs - lastHeardMs;
  if (age <= suspectAfterMs) return "connected";
  if (age <= failedAfterMs) return "suspect";
  return "failed";
}
