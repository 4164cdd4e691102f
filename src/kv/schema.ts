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
 *   (`eventsSince`) and reads at a past revision. Each row carries `prev_revision`, the revision of the same
 *   key's previous event (0: none), so the events of one key form a chain from the newest back; a read at a
 *   past revision walks that chain from the key's live row (store.ts `statesAt`). Compaction deletes what no
 *   read at or after the compact revision can need (see compaction in state-machine.ts).
 * - Why a chain and not an index on (key, revision): such an index (`kv_history_by_key`, schema before
 *   2026-12) took one more random B-tree leaf per put, written to the WAL at every commit and again at the
 *   checkpoint; dropping it cut the SQLite CPU of a put by about a third (docs/bench.md "History chain").
 *   Only deletes are indexed by key (`kv_history_deletes`, partial: puts never write it), which is how a
 *   past read finds keys that existed then and are gone now. `kv_keys.prev_mod_revision` lets the put's
 *   UPSERT hand back the key's previous mod revision (RETURNING sees only the new row).
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
      lease INTEGER NOT NULL,
      prev_mod_revision INTEGER NOT NULL DEFAULT 0
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
      prev_revision INTEGER NOT NULL DEFAULT 0,
      PRIMARY KEY (revision, sub)
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS kv_history_deletes ON kv_history (key, revision) WHERE kind = 1;
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
  upgradeKvSchema(driver);
}

/** Column names of a table (`schema` "main" or an attached database's name), in table order. */
export function tableColumns(driver: SqlDriver, table: string, schema = "main"): string[] {
  return driver.prepare(`SELECT name FROM pragma_table_info(?, ?)`).all(table, schema).map((r) => r.name as string);
}

/**
 * True when the database holds KV tables written before the history chain (schema.ts header), which
 * `upgradeKvSchema` (run by `createKvSchema`, so by `new KvStateMachine`) will rewrite: one pass over the
 * history, about 5 s per million events measured on Bun (docs/kv.md), so a node can say so first. False for
 * an empty database and for a current one.
 */
export function kvSchemaOutdated(driver: SqlDriver): boolean {
  const keys = tableColumns(driver, "kv_keys");
  const history = tableColumns(driver, "kv_history");
  if (keys.length === 0 || history.length === 0) return false;
  const oldIndex = driver.prepare("SELECT 1 AS x FROM sqlite_master WHERE type = 'index' AND name = 'kv_history_by_key'").get() !== undefined;
  return !keys.includes("prev_mod_revision") || !history.includes("prev_revision") || oldIndex;
}

/**
 * Brings a store written before the history chain (schema.ts header), or written to by an older build
 * since (it recreates `kv_history_by_key`), up to date, in one transaction: adds `kv_keys.prev_mod_revision`
 * and `kv_history.prev_revision` where missing, fills the chain (`fillHistoryChain`) and drops the old
 * `kv_history_by_key` index. Does nothing on a current store, so it is safe on every open.
 * Returns true when it changed anything. Throws the driver's error if SQLite refuses (the store is then as
 * it was).
 */
export function upgradeKvSchema(driver: SqlDriver): boolean {
  if (!kvSchemaOutdated(driver)) return false;
  const keysOld = !tableColumns(driver, "kv_keys").includes("prev_mod_revision");
  const historyOld = !tableColumns(driver, "kv_history").includes("prev_revision");
  driver.transaction(() => {
    if (keysOld) driver.exec("ALTER TABLE kv_keys ADD COLUMN prev_mod_revision INTEGER NOT NULL DEFAULT 0");
    if (historyOld) driver.exec("ALTER TABLE kv_history ADD COLUMN prev_revision INTEGER NOT NULL DEFAULT 0");
    // Also when only the old index is back: an older build that opened this store recreated it and wrote
    // rows without links (prev_revision 0), which would silently break reads at past revisions (B4,
    // docs/nemesis.md). Filling again is idempotent.
    fillHistoryChain(driver);
    driver.exec("DROP INDEX IF EXISTS kv_history_by_key");
  });
  return true;
}

/**
 * Sets every `kv_history.prev_revision` to the revision of the same key's previous remaining event (0 when
 * none), for rows written without the chain (an older store or an older snapshot's rows). Runs inside the
 * caller's transaction; builds a temporary (key, revision) index for the lookups and drops it. Pointing
 * past compacted rows is right: compaction leaves no older event behind a removed one that a legal read
 * could reach (state-machine.ts compaction), so "none" and "removed" answer alike.
 */
export function fillHistoryChain(driver: SqlDriver): void {
  driver.exec("CREATE INDEX IF NOT EXISTS kv_history_fill ON kv_history (key, revision)");
  driver.exec(
    "UPDATE kv_history SET prev_revision = ifnull((SELECT MAX(h2.revision) FROM kv_history h2 " +
      "WHERE h2.key = kv_history.key AND h2.revision < kv_history.revision), 0)",
  );
  driver.exec("DROP INDEX kv_history_fill");
}

/** History row kinds. */
export const EVENT_PUT = 0;
export const EVENT_DELETE = 1;
