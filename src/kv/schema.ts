/**
 * SQL schema of the KV state machine. It lives in each node's one SQLite file next to the Raft log tables
 * (src/kv/raft-log.ts); a snapshot restore copies exactly the tables named in `KV_TABLES`.
 *
 * Layout (why each table exists):
 * - `kv_meta`: applied index/term, store revision, compact revision, conf state — written in the same
 *   transaction as the entries they describe, so a crash never applies an entry twice or skips one.
 * - `kv_keys`: the current value of every live key (serves current reads without touching history). Its
 *   lease index is partial (`lease != 0`): most keys have no lease, and a full index made every put write
 *   one more random B-tree page (an earlier schema's full `kv_keys_by_lease` is dropped on open).
 * - `kv_history`: one row per put/delete event, keyed by (revision, sub) where `sub` orders the writes of
 *   one revision (a txn or a lease revoke writes several keys in one revision). Serves watches
 *   (`eventsSince`) and reads at a past revision. Compaction deletes what no read at or after the compact
 *   revision can need (see compaction in state-machine.ts).
 * - `kv_leases`: live leases and their granted TTL (remaining time is the leader Lessor's business).
 * - `kv_sessions`: last applied (sequence, result) per client (Raft thesis §6.3).
 * - `kv_members`: each member's peer and client URL, from the bootstrap configuration and from the context
 *   of applied conf change entries, so addresses replicate with membership and travel in snapshots.
 */
import type { SqlDriver } from "./sql-driver.ts";

/** The KV tables, in creation order; snapshot restore copies exactly these. */
export const KV_TABLES: string[] = ["kv_meta", "kv_keys", "kv_history", "kv_leases", "kv_sessions", "kv_members"];

/** Meta row names in `kv_meta` (name TEXT -> value INTEGER or TEXT). */
export const META = {
  appliedIndex: "applied_index",
  appliedTerm: "applied_term",
  revision: "revision",
  compactRevision: "compact_revision",
  /** JSON of the ConfState. */
  confState: "conf_state",
} as const;

/**
 * Creates the KV tables and indexes if missing (idempotent; safe on every open). Throws the driver's error
 * if SQLite refuses. Does not set PRAGMAs: the driver owns journal mode and synchronous.
 */
export function createKvSchema(driver: SqlDriver): void {
  driver.exec(`
    CREATE TABLE IF NOT EXISTS kv_meta (
      name TEXT PRIMARY KEY,
      value
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS kv_keys (
      key BLOB PRIMARY KEY,
      value BLOB,
      create_revision INTEGER NOT NULL,
      mod_revision INTEGER NOT NULL,
      version INTEGER NOT NULL,
      lease INTEGER NOT NULL
    ) WITHOUT ROWID;
    DROP INDEX IF EXISTS kv_keys_by_lease;
    CREATE INDEX IF NOT EXISTS kv_keys_by_live_lease ON kv_keys (lease) WHERE lease != 0;
    CREATE TABLE IF NOT EXISTS kv_history (
      revision INTEGER NOT NULL,
      sub INTEGER NOT NULL,
      key BLOB NOT NULL,
      kind INTEGER NOT NULL,
      value BLOB,
      create_revision INTEGER NOT NULL,
      version INTEGER NOT NULL,
      lease INTEGER NOT NULL,
      PRIMARY KEY (revision, sub)
    ) WITHOUT ROWID;
    CREATE UNIQUE INDEX IF NOT EXISTS kv_history_by_key ON kv_history (key, revision);
    CREATE TABLE IF NOT EXISTS kv_leases (
      id INTEGER PRIMARY KEY,
      ttl_seconds INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS kv_sessions (
      client_id TEXT PRIMARY KEY,
      sequence INTEGER NOT NULL,
      last_index INTEGER NOT NULL,
      result TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS kv_sessions_by_use ON kv_sessions (last_index);
    CREATE TABLE IF NOT EXISTS kv_members (
      id TEXT PRIMARY KEY,
      peer_url TEXT NOT NULL,
      client_url TEXT NOT NULL
    ) WITHOUT ROWID;
  `);
}

/** History row kinds. */
export const EVENT_PUT = 0;
export const EVENT_DELETE = 1;
