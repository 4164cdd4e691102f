/**
 * The SQLite port: the only thing a runtime adapter supplies to the storage layer (DESIGN.md "The state
 * machine"). Implementations: `runtime-adapters/bun` (bun:sqlite), `runtime-adapters/deno` (node:sqlite),
 * `runtime-adapters/node` (better-sqlite3@12 on Node 20; node:sqlite on Node >= 22.5).
 *
 * Duties of an implementation, to be correct (checked by test/unit/sql-driver-contract.test.ts on every
 * runtime):
 * - parameters bind positionally (`?`); `Uint8Array` binds as BLOB, `string` as TEXT, `number` as INTEGER
 *   when it is an integer and REAL otherwise, `null` as NULL;
 * - BLOB columns read back as `Uint8Array` (a subclass, as better-sqlite3 returns, is fine), INTEGER as `number`
 *   (values stay below 2^53), TEXT as `string`; a missing row from `get` is `undefined` (never `null`);
 * - `transaction(fn)` runs `fn` inside BEGIN IMMEDIATE .. COMMIT, rolls back and rethrows if `fn` throws,
 *   and when it returns with `synchronous=FULL` in WAL mode, the transaction is durable (fsynced);
 * - statements returned by `prepare` are reusable until `close()`;
 * - every error is thrown synchronously as an `Error` whose message includes SQLite's.
 */

/** A value SQLite can bind or return. */
export type SqlValue = null | number | string | Uint8Array;

/** A result row: column name -> value. */
export type SqlRow = Record<string, SqlValue>;

/** A prepared statement. */
export interface SqlStatement {
  /** Runs a write; returns the rows changed and the last inserted rowid. */
  run(...params: SqlValue[]): { changes: number; lastInsertRowid: number };
  /** The first row, or `undefined` when there is none. */
  get(...params: SqlValue[]): SqlRow | undefined;
  /** All rows. */
  all(...params: SqlValue[]): SqlRow[];
}

/** An open SQLite database. */
export interface SqlDriver {
  /** The file path it was opened with (":memory:" for an in-memory database). */
  readonly path: string;
  /** Runs one or more statements without parameters or results (DDL, PRAGMA, VACUUM INTO). */
  exec(sql: string): void;
  prepare(sql: string): SqlStatement;
  /** Runs `fn` atomically (see the duties above); returns its result. Not re-entrant. */
  transaction<T>(fn: () => T): T;
  close(): void;
}

/** Opens (creating if missing) the database file at `path`. Throws if it cannot be opened. */
export type OpenSqlDriver = (path: string) => SqlDriver;
