/**
 * Client sessions (Raft thesis §6.3, "Implementing linearizable semantics"): each client tags its commands
 * with (clientId, sequence); the state machine remembers the last applied sequence of each client and its
 * result, so a retried command returns the stored result instead of applying twice.
 *
 * Rules (all decided by applied index, never by a clock, so every replica agrees):
 * - sequence == stored sequence: a retry; return the stored result (or stored error).
 * - sequence > stored sequence: a new command. The client may skip numbers (sequences it gave up on before
 *   sending, or whose send never arrived); a skipped number can then never apply, because only the latest
 *   result is kept and anything lower is refused (next rule).
 * - sequence < stored sequence: older than the last applied one; its result (if it ever applied) is not
 *   kept, so it cannot be answered: `session_expired`. The message must not claim it applied — with
 *   skipping allowed, it may never have been sent.
 * - unknown client with sequence > 1: its session was evicted, so we cannot tell a retry from a new
 *   command; `session_expired` (the client must pick a new clientId). Sequence 1 opens a session.
 * - a session unused for more than `sessionTtlEntries` applied entries is expired (treated as unknown);
 *   opening a session when `maxSessions` live ones exist evicts the least recently used (smallest index).
 */
import type { SqlStatement } from "./sql-driver.ts";
import type { KvStore } from "./store.ts";
import { KvError, type KvErrorCode, type KvLimits, type KvResult } from "./types.ts";

/** What a session lookup decided. */
export type SessionLookup = { kind: "new" } | { kind: "duplicate"; result?: KvResult; error?: KvError } | { kind: "rejected"; error: KvError };

const HEX = "0123456789abcdef";

function toHex(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i++) s += HEX[b[i] >> 4] + HEX[b[i] & 15];
  return s;
}

function fromHex(s: string): Uint8Array {
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Serializes a result or error to JSON text; bytes become {"$b": hex}. Inverse: `decodeOutcome`. */
export function encodeOutcome(outcome: { result?: KvResult; error?: KvError }): string {
  const plain = outcome.error
    ? { error: { code: outcome.error.code, message: outcome.error.message, compactRevision: outcome.error.compactRevision } }
    : { result: outcome.result };
  return JSON.stringify(plain, (_k, v: unknown) => (v instanceof Uint8Array ? { $b: toHex(v) } : v));
}

/** Parses what `encodeOutcome` wrote. */
export function decodeOutcome(text: string): { result?: KvResult; error?: KvError } {
  const parsed = JSON.parse(text, (_k, v: unknown) => {
    if (v !== null && typeof v === "object" && typeof (v as { $b?: unknown }).$b === "string") return fromHex((v as { $b: string }).$b);
    return v;
  }) as { result?: KvResult; error?: { code: KvErrorCode; message: string; compactRevision?: number } };
  if (parsed.error) {
    const e = parsed.error;
    return { error: new KvError(e.code, e.message, e.compactRevision === undefined ? undefined : { compactRevision: e.compactRevision }) };
  }
  return { result: parsed.result };
}

/** Session table access; every method runs inside the apply transaction. */
export class Sessions {
  private readonly sGet: SqlStatement;
  private readonly sPut: SqlStatement;
  private readonly sExpire: SqlStatement;
  private readonly sCount: SqlStatement;
  private readonly sEvictOldest: SqlStatement;

  constructor(
    store: KvStore,
    private readonly limits: KvLimits,
  ) {
    const d = store.driver;
    this.sGet = d.prepare("SELECT sequence, last_index, result FROM kv_sessions WHERE client_id = ?");
    this.sPut = d.prepare(
      "INSERT INTO kv_sessions (client_id, sequence, last_index, result) VALUES (?, ?, ?, ?) " +
        "ON CONFLICT (client_id) DO UPDATE SET sequence = excluded.sequence, last_index = excluded.last_index, result = excluded.result",
    );
    this.sExpire = d.prepare("DELETE FROM kv_sessions WHERE last_index < ?");
    this.sCount = d.prepare("SELECT COUNT(*) AS n FROM kv_sessions");
    this.sEvictOldest = d.prepare(
      "DELETE FROM kv_sessions WHERE client_id IN (SELECT client_id FROM kv_sessions ORDER BY last_index, client_id LIMIT ?)",
    );
  }

  /** The oldest last-use index still live when applying entry `index`. */
  private liveFloor(index: number): number {
    return index - this.limits.sessionTtlEntries;
  }

  /** Decides what to do with a command of (clientId, sequence) applied at entry `index`. */
  lookup(clientId: string, sequence: number, index: number): SessionLookup {
    if (typeof clientId !== "string" || clientId.length === 0 || !Number.isSafeInteger(sequence) || sequence < 1) {
      return { kind: "rejected", error: new KvError("bad_request", "session needs a clientId and a sequence >= 1") };
    }
    const row = this.sGet.get(clientId);
    const live = row !== undefined && (row.last_index as number) >= this.liveFloor(index);
    if (!live) {
      if (sequence === 1) return { kind: "new" };
      return { kind: "rejected", error: new KvError("session_expired", `session of client ${clientId} is unknown or expired (sequence ${sequence}); a new session starts at X-Request-Seq 1, or use a new client id`) };
    }
    const stored = row.sequence as number;
    if (sequence > stored) return { kind: "new" };
    if (sequence === stored) return { kind: "duplicate", ...decodeOutcome(row.result as string) };
    return {
      kind: "rejected",
      error: new KvError("session_expired", `sequence ${sequence} of client ${clientId} is older than its last applied sequence ${stored}; its result is not kept (use a new sequence or client id)`),
    };
  }

  /** Records the outcome of (clientId, sequence) applied at entry `index`, evicting expired and LRU sessions. */
  record(clientId: string, sequence: number, index: number, outcome: { result?: KvResult; error?: KvError }): void {
    // Expired rows are invisible to lookup already; deleting them here only bounds the table.
    this.sExpire.run(this.liveFloor(index));
    const existing = this.sGet.get(clientId);
    if (existing === undefined) {
      const n = this.sCount.get()?.n as number;
      if (n >= this.limits.maxSessions) this.sEvictOldest.run(n - this.limits.maxSessions + 1);
    }
    this.sPut.run(clientId, sequence, index, encodeOutcome(outcome));
  }
}
