/**
 * API errors: one stable `code` per failure, one HTTP status per code, and the JSON error body
 * `{"error": {"code", "message", ...}}` of DESIGN.md "Client API (v1)". The service port (`service.ts`)
 * throws `ApiError`; errors from lower layers (KV `KvError`, Raft `RaftError`) are translated by
 * `toApiError` from their stable `code` so this file does not depend on their classes.
 */

/**
 * Stable error codes and their HTTP status. Codes never change meaning once published (clients switch on
 * them); the SDK mirrors this table. Sources: DESIGN.md (bad_request ... forbidden), etcd's error list for
 * `compacted`/`future_revision`/`lease_not_found`, KvError (`session_expired`: the client's session was
 * evicted, pick a new client id), docs/scenarios.md C10 (`not_member`), C23 (`outcome_unknown`), RFC 9110
 * §15.5.9 / RFC 6585 §5 (`request_timeout` 408, `headers_too_large` 431: answered by the runtime's HTTP
 * server before a request reaches the app, where the runtime lets us write the body; docs/api.md),
 * `response_too_large` 413 (a read's answer above the node's maxResponseBytes, src/kv/answer-size.ts; 413
 * as for a body too large, the request is what asks for too much), `no_route` 404 (a path that is no route: a
 * wrong base URL or a typo, told apart from a missing key so that the SDK's `get` does not answer null for
 * every key; B9 in docs/nemesis.md).
 */
export const API_ERROR_STATUS = {
  bad_request: 400,
  future_revision: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  lease_not_found: 404,
  no_route: 404,
  method_not_allowed: 405,
  request_timeout: 408,
  conflict: 409,
  session_expired: 409,
  compacted: 410,
  compare_failed: 412,
  payload_too_large: 413,
  response_too_large: 413,
  not_leader: 421,
  too_many_requests: 429,
  headers_too_large: 431,
  internal: 500,
  no_leader: 503,
  unavailable: 503,
  not_member: 503,
  timeout: 504,
  outcome_unknown: 504,
} as const;

/** One of the stable error codes of `API_ERROR_STATUS`. */
export type ApiErrorCode = keyof typeof API_ERROR_STATUS;

/** Where the client should send the request instead (the current leader), when known. */
export interface LeaderHint {
  /** Raft node id of the leader. */
  id: string;
  /** The leader's client API base URL (e.g. `http://10.0.0.2:8080`), or "" when unknown. */
  clientUrl: string;
}

/** Optional fields of an `ApiError` besides code and message. */
export interface ApiErrorDetails {
  /** Seconds the client should wait before retrying (sent as `Retry-After`); 503 and 429 default to 1. */
  retryAfterSec?: number;
  /** The known leader, for `not_leader` / `no_leader` / `not_member`. */
  leader?: LeaderHint;
  /** For `compacted`: the compact revision, the oldest revision still readable and watchable. */
  compactRevision?: number;
  /** For `compare_failed`: the store revision at which the precondition was checked (not the key's modRevision). */
  currentRevision?: number;
}

/**
 * The error every `KvService` method and API handler throws. `status` is derived from `code`
 * (`API_ERROR_STATUS`); `toJSON` gives the body the API sends.
 */
export class ApiError extends Error {
  readonly status: number;
  constructor(
    readonly code: ApiErrorCode,
    message: string,
    readonly details: ApiErrorDetails = {},
  ) {
    super(message);
    this.name = "ApiError";
    this.status = API_ERROR_STATUS[code];
  }

  /** Seconds for `Retry-After`: the explicit value, else 1 for 429/503, else undefined. */
  get retryAfterSec(): number | undefined {
    if (this.details.retryAfterSec !== undefined) return this.details.retryAfterSec;
    return this.status === 503 || this.status === 429 ? 1 : undefined;
  }

  /** The JSON error body: `{"error": {"code", "message", leader?, compactRevision?, currentRevision?}}`. */
  toJSON(): { error: Record<string, unknown> } {
    const { leader, compactRevision, currentRevision } = this.details;
    const error: Record<string, unknown> = { code: this.code, message: this.message };
    if (leader) error.leader = leader;
    if (compactRevision !== undefined) error.compactRevision = compactRevision;
    if (currentRevision !== undefined) error.currentRevision = currentRevision;
    return { error };
  }
}

/**
 * Codes of the KV state machine (`KvError.code`, src/kv/types.ts) and Raft core (`RaftError.code`,
 * src/raft/types.ts) that differ from an API code, mapped to the API code clients see. Codes equal to an
 * API code (e.g. `compacted`, `lease_not_found`, `compare_failed`) map to themselves.
 */
const LOWER_LAYER_CODES: Record<string, ApiErrorCode> = {
  invalid_argument: "bad_request",
  invalid_range: "bad_request",
  key_empty: "bad_request",
  key_too_large: "payload_too_large",
  value_too_large: "payload_too_large",
  request_too_large: "payload_too_large",
  too_many_ops: "bad_request",
  duplicate_key_in_txn: "bad_request",
  lease_expired: "lease_not_found",
  lease_exists: "conflict",
  proposal_dropped: "unavailable",
  snapshot_unavailable: "unavailable",
  member_exists: "conflict",
  member_not_found: "not_found",
  deadline_exceeded: "timeout",
  aborted: "timeout",
  invariant: "internal",
};

/**
 * Translates anything thrown below the API into an `ApiError`: an `ApiError` passes through; an object
 * with a string `code` (KvError, RaftError, a node error) is mapped by code (unknown codes become
 * `internal`); an `AbortError`/`TimeoutError` DOMException becomes `timeout`; anything else `internal`.
 * Never throws.
 */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  const e = err as { code?: unknown; message?: unknown; name?: unknown; leaderId?: unknown; compactRevision?: unknown; retryAfterSec?: unknown };
  const message = typeof e?.message === "string" ? e.message : String(err);
  // The runtime's own text ("The operation was aborted due to timeout") names no request or limit: say ours.
  if (e && e.name === "TimeoutError") return new ApiError("timeout", "the request's deadline passed before it finished (the node's requestTimeoutMs, 30 s by default)");
  if (e && e.name === "AbortError") return new ApiError("timeout", message && !message.startsWith("The operation was aborted") ? message : "the request was cancelled before it finished");
  if (e && typeof e.code === "string") {
    const code: ApiErrorCode = e.code in API_ERROR_STATUS ? (e.code as ApiErrorCode) : LOWER_LAYER_CODES[e.code] ?? "internal";
    const details: ApiErrorDetails = {};
    if (typeof e.leaderId === "string" && e.leaderId) details.leader = { id: e.leaderId, clientUrl: "" };
    if (typeof e.compactRevision === "number") details.compactRevision = e.compactRevision;
    if (typeof e.retryAfterSec === "number") details.retryAfterSec = e.retryAfterSec;
    if (code === "not_leader" && !details.leader) return new ApiError("no_leader", message, details);
    return new ApiError(code, message, details);
  }
  return new ApiError("internal", message || "internal error");
}
