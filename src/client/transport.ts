/**
 * The SDK's request loop: endpoint choice with a cached leader hint, per-call deadline and cancellation
 * (`AbortSignal.any` + `AbortSignal.timeout`), retries with exponential backoff and full jitter, and
 * exactly-once writes through client sessions. Uses only `fetch`, so it runs in browsers, Bun, Deno, Node.
 *
 * Retry rules (docs/client.md): reads are retried on network errors, 429, 503 and 504; writes carry a
 * session (`X-Client-Id`, `X-Request-Seq`) so they are retried the same way and apply once; admin calls
 * (membership) are retried only on 429/503 (the server did not act) and otherwise fail with
 * `OutcomeUnknownError` when the answer was lost. `not_leader` is followed to the leader at once (at most
 * `MAX_REDIRECTS` times) without using up an attempt. An endpoint that turns out to be an edgekv peer port
 * (`not_client_port`) is skipped like a refused connection; when every attempt failed, the error lists each
 * endpoint's reason.
 */
import { AbortedError, BadRequestError, EdgeKvError, NotLeaderError, OutcomeUnknownError, TimeoutError, UnavailableError, errorFromBody } from "./errors.ts";

/** Retry policy: total `attempts` (>= 1), backoff `baseMs` doubling per attempt up to `maxMs`, full jitter. */
export interface RetryPolicy {
  attempts: number;
  baseMs: number;
  maxMs: number;
}

/** Defaults: 5 attempts, 50 ms base, 2 s cap; 30 s deadline (DESIGN.md request timeout). */
export const CLIENT_DEFAULTS = { timeoutMs: 30_000, retry: { attempts: 5, baseMs: 50, maxMs: 2_000 } as RetryPolicy };

/** Bound on leader redirects per call (as ioredis `maxRedirections`). */
export const MAX_REDIRECTS = 16;

/** How a call may be retried: `read` (idempotent), `write` (session makes retries safe), `admin` (not idempotent). */
export type CallKind = "read" | "write" | "admin";

/** Per-call options every SDK method takes. */
export interface CallOptions {
  signal?: AbortSignal;
  /** Deadline of this call including retries, ms (default: the client's `timeoutMs`). */
  timeoutMs?: number;
}

/** What `Transport.call` sends. */
export interface HttpCall {
  method: string;
  /** Path with query, e.g. `/v1/kv/a?lease=5`. */
  path: string;
  kind: CallKind;
  headers?: Record<string, string>;
  body?: Uint8Array | string;
  opts?: CallOptions;
}

/** Transport settings (from `EdgeKvClientOptions`). */
export interface TransportOptions {
  endpoints: string[];
  timeoutMs: number;
  retry: RetryPolicy;
  clientId: string;
  fetch: typeof fetch;
  /** Uniform [0, 1) source for jitter (tests pass a fixed one). */
  random: () => number;
}

/** One session slot: a client id with one request at a time (the state machine keeps one sequence per client). */
interface SessionSlot {
  clientId: string;
  nextSequence: number;
}

/** Error codes meaning the request never left (connect or DNS failed, bad URL): Node undici's `cause.code`, Bun's `code`. */
const NEVER_SENT_CODES = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH", "ERR_INVALID_URL", "ConnectionRefused", "FailedToOpenSocket"]);

/** Deno (and Bun) say it only in the message: hyper's "client error (Connect)", "os error 111", DNS and URL errors. */
const NEVER_SENT_TEXT = /connection refused|os error 111|client error \(connect\)|dns error|invalid url|unable to connect|requests to port \d+ are blocked/i;

/**
 * True when a `fetch` rejection proves the request was never sent (connection refused, name not found,
 * invalid URL), so a write cannot have applied and the next endpoint may be tried without an outcome_unknown.
 * A reset or a timeout after connecting is NOT proof (the body may have reached the server). Exported for tests.
 */
export function neverSent(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown; cause?: { code?: unknown; message?: unknown } } | null;
  if (!e || typeof e !== "object") return false;
  for (const code of [e.code, e.cause?.code]) if (typeof code === "string" && NEVER_SENT_CODES.has(code)) return true;
  return [e.message, e.cause?.message].some((m) => typeof m === "string" && NEVER_SENT_TEXT.test(m));
}

/**
 * Header the peer transport sets on its own answers (docs/peer-protocol.md "Admission"); a client API never
 * sends it, so an answer carrying it comes from a peer port (Bun and Deno peer servers also speak HTTP/1.1).
 */
const PEER_ERROR_HEADER = "x-edgekv-peer-error";

/** Error code of an endpoint that is not an edgekv client port (an edgekv peer port, or no HTTP/1.1 server). */
export const NOT_CLIENT_PORT = "not_client_port";

/**
 * A fetch failure whose answer was not HTTP/1.1 at all: Node (undici) `cause.code` HPE_INVALID_CONSTANT
 * ("Expected HTTP/"), Bun `Malformed_HTTP_Response`, Deno (hyper) "invalid HTTP version parsed" or, when
 * the bytes arrive before the request is written, "received unexpected message from connection". Node's peer server speaks only HTTP/2 and sends its settings frame first, which is what an
 * HTTP/1.1 client then reads. Such a server cannot have run the request, so nothing applied.
 */
export function notHttp1Answer(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown; cause?: { code?: unknown; message?: unknown } } | null;
  if (!e || typeof e !== "object") return false;
  for (const code of [e.code, e.cause?.code]) if (code === "HPE_INVALID_CONSTANT" || code === "Malformed_HTTP_Response") return true;
  return [e.message, e.cause?.message].some((m) => typeof m === "string" && /does not match the HTTP\/1\.1 protocol|received unexpected message from connection|invalid HTTP version parsed|malformed_http_response/i.test(m));
}

/** Sleeps `ms`, rejecting with the signal's reason when it aborts first. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** The request loop shared by every SDK method. */
export class Transport {
  /** Client API URL of the leader, when a server told us. */
  leaderUrl: string | undefined;
  private cursor = 0;
  private readonly idleSlots: SessionSlot[] = [];
  private slotCount = 0;

  constructor(readonly options: TransportOptions) {
    if (options.endpoints.length === 0) throw new BadRequestError("bad_request", "at least one endpoint is needed");
    for (const e of options.endpoints) {
      // A typo here would otherwise surface later as a network error on every call.
      let u: URL | undefined;
      try {
        u = new URL(e);
      } catch {
        u = undefined;
      }
      if (!u || (u.protocol !== "http:" && u.protocol !== "https:")) throw new BadRequestError("bad_request", `endpoint ${JSON.stringify(e)} is not an http(s) URL`);
      // The client appends /v1/...: an endpoint ending in /v1 asked for /v1/v1/kv/..., and the server's
      // 404 for that unknown route read as "key not found" (break session B9). A proxy's own prefix stays allowed.
      if (/\/v1\/?$/.test(u.pathname)) throw new BadRequestError("bad_request", `endpoint ${JSON.stringify(e)} ends in /v1: give the node's base URL (e.g. ${u.origin}); the client adds /v1/... itself`);
    }
  }

  /** The endpoint the next attempt goes to: the leader hint, else the current endpoint. */
  endpoint(): string {
    return this.leaderUrl ?? this.options.endpoints[this.cursor % this.options.endpoints.length];
  }

  /** Moves on to the next endpoint after a failure there (and forgets a leader hint that failed). */
  private failover(url: string): void {
    if (this.leaderUrl === url) this.leaderUrl = undefined;
    else this.cursor = (this.cursor + 1) % this.options.endpoints.length;
  }

  /** A session slot free for one write; concurrent writes get distinct client ids (`<clientId>-<n>`). */
  private takeSlot(): SessionSlot {
    return this.idleSlots.pop() ?? { clientId: this.slotCount++ === 0 ? this.options.clientId : `${this.options.clientId}-${this.slotCount - 1}`, nextSequence: 1 };
  }

  /** The combined signal of a call: caller's signal and the deadline. */
  signalFor(opts?: CallOptions): { signal: AbortSignal; deadline: AbortSignal } {
    const deadline = AbortSignal.timeout(opts?.timeoutMs ?? this.options.timeoutMs);
    return { signal: opts?.signal ? AbortSignal.any([opts.signal, deadline]) : deadline, deadline };
  }

  private backoffMs(attempt: number, retryAfterSec?: number): number {
    const { baseMs, maxMs } = this.options.retry;
    const jitter = this.options.random() * Math.min(maxMs, baseMs * 2 ** attempt);
    return retryAfterSec !== undefined ? Math.max(jitter, Math.min(retryAfterSec * 1000, maxMs)) : jitter;
  }

  /**
   * Sends `c`, following the leader and retrying per the rules above. Resolves with an OK response (2xx);
   * rejects with a typed `EdgeKvError`: the server's error, `TimeoutError` (deadline, nothing possibly
   * applied), `AbortedError` (caller's signal), `OutcomeUnknownError` (a write or admin call may have
   * applied), `UnavailableError` (retries spent).
   */
  async call(c: HttpCall): Promise<Response> {
    const { signal, deadline } = this.signalFor(c.opts);
    const slot = c.kind === "write" ? this.takeSlot() : undefined;
    let maybeApplied = false;
    let redirects = 0;
    let lastError: EdgeKvError | undefined;
    // A live node's own answer (e.g. 503 no_leader) says more than a dead endpoint's network error.
    let lastServerError: EdgeKvError | undefined;
    // Why each endpoint failed (last reason), for the error when every attempt failed.
    const reasons = new Map<string, string>();
    const notClient = new Set<string>();
    try {
      for (let attempt = 0; attempt < this.options.retry.attempts; ) {
        const url = this.endpoint();
        const headers: Record<string, string> = { ...c.headers };
        if (slot) {
          headers["x-client-id"] = slot.clientId;
          headers["x-request-seq"] = String(slot.nextSequence);
        }
        let res: Response;
        try {
          res = await this.options.fetch(url + c.path, { method: c.method, headers, body: c.body as BodyInit | undefined, signal });
        } catch (err) {
          if (c.opts?.signal?.aborted) throw c.kind === "read" ? new AbortedError("aborted", "aborted by the caller") : new OutcomeUnknownError("outcome_unknown", "aborted by the caller after sending");
          if (deadline.aborted) throw this.deadlineError(c.kind, c.kind !== "read");
          this.failover(url);
          if (notHttp1Answer(err)) {
            // Not an edgekv client port (most likely a Node node's HTTP/2-only peer port): nothing ran there.
            lastError = this.notClientPort(url, "this is most likely an edgekv peer port (it does not answer HTTP/1.1, only HTTP/2), not a client port", reasons, notClient);
            if (notClient.size >= new Set(this.options.endpoints).size) break;
            attempt++;
            if (attempt < this.options.retry.attempts) await this.pause(attempt, undefined, signal, c.kind);
            continue;
          }
          const cause = (err as { cause?: { message?: unknown } })?.cause?.message;
          lastError = new UnavailableError("network", `${url}: ${(err as Error)?.message ?? String(err)}${typeof cause === "string" ? ` (${cause})` : ""}`, 0, { endpoint: url });
          reasons.set(url, lastError.message);
          const sent = !neverSent(err);
          if (c.kind === "admin" && sent) throw new OutcomeUnknownError("outcome_unknown", `connection failed, the change may have applied: ${lastError.message}`);
          if (c.kind === "write" && sent) maybeApplied = true;
          attempt++;
          if (attempt < this.options.retry.attempts) await this.pause(attempt, undefined, signal, c.kind);
          continue;
        }
        const leader = res.headers.get("x-leader-url");
        if (res.ok) {
          if (leader) this.leaderUrl = leader;
          if (slot) slot.nextSequence++;
          return res;
        }
        if (res.headers.has(PEER_ERROR_HEADER)) {
          // The peer transport refused us: the endpoint is a peer port, like a refused connection for the caller.
          await res.body?.cancel();
          this.failover(url);
          lastError = this.notClientPort(url, "this is an edgekv peer port, not a client port", reasons, notClient);
          if (notClient.size >= new Set(this.options.endpoints).size) break;
          attempt++;
          if (attempt < this.options.retry.attempts) await this.pause(attempt, undefined, signal, c.kind);
          continue;
        }
        let body: unknown = null;
        try {
          body = await res.json();
        } catch {
          // A proxy's non-JSON error page: classified by status alone.
        }
        const err = errorFromBody(res.status, body, res.headers, url);
        lastError = err;
        lastServerError = err;
        reasons.set(url, `${url}: ${err.code}: ${err.message}`);
        if (err instanceof NotLeaderError && err.details.leader?.clientUrl && redirects < MAX_REDIRECTS) {
          redirects++;
          this.leaderUrl = err.details.leader.clientUrl;
          continue;
        }
        if (err.code === "session_expired" && slot) {
          // Our session was evicted: a first try never applied, so a new session may resend it.
          if (maybeApplied) throw new OutcomeUnknownError("outcome_unknown", "session expired while retrying; the write may have applied");
          slot.clientId = `${this.options.clientId}-${this.slotCount++}`;
          slot.nextSequence = 1;
          attempt++;
          continue;
        }
        // A not_leader without a usable URL is handled like 503: nothing was done, try another endpoint.
        const leaderless = err instanceof NotLeaderError;
        const retryable = leaderless || res.status === 429 || res.status === 503 || (res.status === 504 && c.kind !== "admin");
        if (!retryable) {
          if (slot) slot.nextSequence++;
          throw err;
        }
        if (res.status === 504 && c.kind === "write") maybeApplied = true;
        if (res.status === 503 || leaderless) this.failover(url);
        attempt++;
        if (attempt < this.options.retry.attempts) await this.pause(attempt, err.details.retryAfterSec, signal, c.kind);
      }
    } catch (err) {
      // Giving up on a write that may have reached the leader is never a plain timeout (C23).
      if (maybeApplied && (err instanceof TimeoutError || err instanceof AbortedError)) throw new OutcomeUnknownError("outcome_unknown", `${err.message}; the write may have applied`);
      throw err;
    } finally {
      if (slot) {
        // A write that may still be in flight keeps its sequence consumed, so a late copy is refused.
        if (maybeApplied) slot.nextSequence++;
        this.idleSlots.push(slot);
      }
    }
    if (maybeApplied) throw new OutcomeUnknownError("outcome_unknown", `retries spent; the write may have applied (${lastError?.message ?? "no answer"})`);
    throw withReasons(lastServerError ?? lastError ?? new UnavailableError("unavailable", "retries spent"), reasons);
  }

  /** Records an endpoint that is not a client port; the error says so (code `not_client_port`). */
  private notClientPort(url: string, why: string, reasons: Map<string, string>, notClient: Set<string>): EdgeKvError {
    const message = `${url}: ${why}`;
    reasons.set(url, message);
    notClient.add(url);
    return new EdgeKvError(NOT_CLIENT_PORT, message, 0, { endpoint: url });
  }

  private deadlineError(kind: CallKind, sent: boolean): EdgeKvError {
    return sent ? new OutcomeUnknownError("outcome_unknown", "deadline passed after sending; the write may have applied") : new TimeoutError("timeout", `deadline passed (${kind})`);
  }

  private async pause(attempt: number, retryAfterSec: number | undefined, signal: AbortSignal, kind: CallKind): Promise<void> {
    try {
      await sleep(this.backoffMs(attempt - 1, retryAfterSec), signal);
    } catch {
      throw signal.reason?.name === "TimeoutError" ? new TimeoutError("timeout", `deadline passed while retrying (${kind})`) : new AbortedError("aborted", "aborted by the caller");
    }
  }
}

/**
 * The final error of a call whose attempts all failed: when more than one endpoint failed, its message lists
 * each endpoint's last reason (`a: ...; b: ...`), keeping the code, class, status and details of `err`.
 */
function withReasons(err: EdgeKvError, reasons: Map<string, string>): EdgeKvError {
  if (reasons.size < 2) return err;
  const listed = `all attempts failed: ${[...reasons.values()].join("; ")}`;
  const Ctor = err.constructor as new (code: string, message: string, status: number, details: EdgeKvError["details"]) => EdgeKvError;
  return new Ctor(err.code, listed, err.status, err.details);
}
