/**
 * Typed errors of the edgekv SDK. Every failure the SDK reports is an `EdgeKvError` whose `code` is one of
 * the API's stable codes (src/api/errors.ts, docs/api.md) or an SDK-side one (`network`, `timeout`,
 * `aborted`, `outcome_unknown`, `not_client_port`: the endpoint is an edgekv peer port, src/client/transport.ts). Subclasses exist for the codes callers branch on.
 */

/** Where the leader is, as the server told us. */
export interface LeaderHint {
  id: string;
  /** Client API base URL of the leader; "" when unknown. */
  clientUrl: string;
}

/** Base class: `code` (stable), HTTP `status` (0 when no response), server message, optional hints. */
export class EdgeKvError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 0,
    readonly details: { retryAfterSec?: number; leader?: LeaderHint; compactRevision?: number; currentRevision?: number; endpoint?: string } = {},
  ) {
    super(message);
    this.name = "EdgeKvError";
  }
}

/** The node is not the leader (421 `not_leader`); `leader` says where to go. The SDK follows it itself. */
export class NotLeaderError extends EdgeKvError {
  override name = "NotLeaderError";
}

/** No leader, node unavailable or not a member (503), or too many requests (429): retryable later. */
export class UnavailableError extends EdgeKvError {
  override name = "UnavailableError";
}

/** The call's deadline (`timeoutMs`) passed before an answer, and the request was safe to give up (a read, or a write that never left). */
export class TimeoutError extends EdgeKvError {
  override name = "TimeoutError";
}

/** The caller's `signal` aborted the call. */
export class AbortedError extends EdgeKvError {
  override name = "AbortedError";
}

/** A precondition (If-Match / If-None-Match / compare) failed (412 `compare_failed`). */
export class CompareFailedError extends EdgeKvError {
  override name = "CompareFailedError";
}

/**
 * A write may or may not have been applied: it was sent, then the connection failed or the deadline passed
 * (docs/scenarios.md C23). Read the key to find out; retrying with the same session would have been safe, so
 * the SDK only reports this once its retries are spent.
 */
export class OutcomeUnknownError extends EdgeKvError {
  override name = "OutcomeUnknownError";
}

/** The requested revision was compacted (410 `compacted`); `details.compactRevision` is the oldest still available. */
export class CompactedError extends EdgeKvError {
  override name = "CompactedError";
}

/** The lease does not exist (404 `lease_not_found`, docs/scenarios.md C08). */
export class LeaseNotFoundError extends EdgeKvError {
  override name = "LeaseNotFoundError";
}

/** Bad input: the server's 400, or with status 0 the SDK's own refusal before sending anything. */
export class BadRequestError extends EdgeKvError {
  override name = "BadRequestError";
}

/** HTTP statuses the SDK may retry (the server did not act, or says "later"). */
export const RETRYABLE_STATUS = new Set([429, 503]);

/** Builds the typed error of an API error body `{"error": {...}}` (or a bare status when the body is not JSON). */
export function errorFromBody(status: number, body: unknown, headers?: Headers, endpoint?: string): EdgeKvError {
  const e = (body as { error?: Record<string, unknown> } | null)?.error ?? {};
  const code = typeof e.code === "string" ? e.code : status >= 500 ? "unavailable" : "bad_request";
  const message = typeof e.message === "string" ? e.message : `HTTP ${status}`;
  const details: EdgeKvError["details"] = { endpoint };
  const ra = headers?.get("retry-after");
  if (ra && /^[0-9]+$/.test(ra)) details.retryAfterSec = Number(ra);
  const leader = e.leader as LeaderHint | undefined;
  if (leader && typeof leader.id === "string") details.leader = { id: leader.id, clientUrl: typeof leader.clientUrl === "string" ? leader.clientUrl : "" };
  else if (headers?.get("x-leader-id")) details.leader = { id: headers.get("x-leader-id")!, clientUrl: headers.get("x-leader-url") ?? "" };
  if (typeof e.compactRevision === "number") details.compactRevision = e.compactRevision;
  if (typeof e.currentRevision === "number") details.currentRevision = e.currentRevision;
  switch (code) {
    case "not_leader":
      return new NotLeaderError(code, message, status, details);
    case "compare_failed":
      return new CompareFailedError(code, message, status, details);
    case "compacted":
      return new CompactedError(code, message, status, details);
    case "lease_not_found":
      return new LeaseNotFoundError(code, message, status, details);
    case "timeout":
      return new TimeoutError(code, message, status, details);
    case "outcome_unknown":
      return new OutcomeUnknownError(code, message, status, details);
    case "bad_request":
      return new BadRequestError(code, message, status, details);
  }
  if (RETRYABLE_STATUS.has(status)) return new UnavailableError(code, message, status, details);
  return new EdgeKvError(code, message, status, details);
}
