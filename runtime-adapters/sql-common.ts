/**
 * Code shared by the three SQLite drivers (bun:sqlite, node:sqlite, better-sqlite3): parameter
 * normalisation, the transaction wrapper, the pragmas every edgekv database is opened with, and the whole
 * statement adapter of the two drivers that bind numbers as REAL (node:sqlite, better-sqlite3). Uses no
 * runtime API, so every driver may import it.
 */
import type { SqlDriver, SqlRow, SqlStatement, SqlValue } from "../src/kv/sql-driver.ts";

/**
 * Pragmas applied on open (DESIGN.md "Storage"; SQLite docs pragma.html): `busy_timeout=5000` ms so a
 * second connection waits instead of failing at once — FIRST, because `journal_mode=WAL` itself may need
 * a lock (WAL recovery after a crash) and without the timeout it fails at once with "database is locked"
 * (seen in the crash test); then WAL so readers never block the single writer, and `synchronous=FULL` so
 * a committed transaction survives power loss (Raft needs the log and hard state durable before replying).
 */
export const OPEN_PRAGMAS = "PRAGMA busy_timeout=5000; PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;";

/**
 * node:sqlite and better-sqlite3 bind every JS number as REAL; the SqlDriver contract wants integers bound
 * as INTEGER (so `? + 1` and `typeof(?)` behave as in bun:sqlite). Integral numbers become BigInt, which
 * both bind as INTEGER. Returns the same array when nothing needs changing (the common blob/text case).
 * Rows need no conversion back: every driver is opened without safeIntegers/readBigInts, so INTEGER
 * columns already read as numbers.
 */
export function integersAsBigInt(params: SqlValue[]): unknown[] {
  let out: unknown[] | undefined;
  for (let i = 0; i < params.length; i++) {
    const p = params[i];
    if (typeof p === "number" && Number.isInteger(p)) {
      out ??= params.slice();
      out[i] = BigInt(p);
    }
  }
  return out ?? params;
}

/** A statement the transaction wrapper can run with no parameters. */
interface Runnable {
  run(): unknown;
}

/**
 * Builds `transaction(fn)`: BEGIN IMMEDIATE (take the write lock up front, so a busy database fails at
 * BEGIN rather than half way), run `fn`, COMMIT; on any throw ROLLBACK and rethrow. Not re-entrant: a nested
 * call throws, because SQLite has no nested BEGIN and silently joining the outer transaction would hide
 * whose commit made the data durable.
 */
export function makeTransaction(begin: Runnable, commit: Runnable, rollback: Runnable): <T>(fn: () => T) => T {
  let active = false;
  return <T>(fn: () => T): T => {
    if (active) throw new Error("SqlDriver.transaction is not re-entrant");
    active = true;
    try {
      begin.run();
      let result: T;
      try {
        result = fn();
        // An async fn would commit before its awaits ran: refuse it instead of committing half a batch.
        if (result instanceof Promise) throw new Error("SqlDriver.transaction needs a synchronous function");
        commit.run();
      } catch (err) {
        try {
          rollback.run();
        } catch {
          // No transaction left to roll back (SQLite already rolled back on a fatal error); keep the first error.
        }
        throw err;
      }
      return result;
    } finally {
      active = false;
    }
  };
}

/** The members of a node:sqlite `StatementSync` / better-sqlite3 `Statement` the drivers call. */
export interface RealBindingStatement {
  run(...params: unknown[]): { changes: number | bigint; lastInsertRowid: number | bigint };
  get(...params: unknown[]): Record<string, unknown> | undefined | null;
  all(...params: unknown[]): Record<string, unknown>[];
}

/** The members of a node:sqlite `DatabaseSync` / better-sqlite3 `Database` the drivers call. */
export interface RealBindingDatabase {
  exec(sql: string): void;
  prepare(sql: string): RealBindingStatement;
  close(): void;
}

/**
 * The SqlDriver over an open node:sqlite or better-sqlite3 database (both bind every JS number as REAL):
 * applies `OPEN_PRAGMAS`, binds integral numbers as INTEGER (`integersAsBigInt`), reports `changes` and
 * `lastInsertRowid` as numbers, reads a missing row as `undefined` (node:sqlite may say `null`) and wraps
 * transactions with `makeTransaction`. Throws the database's own errors (e.g. SQLITE_BUSY after the 5 s
 * busy timeout).
 */
export function realBindingDriver(db: RealBindingDatabase, path: string): SqlDriver {
  db.exec(OPEN_PRAGMAS);
  const prepare = (sql: string): SqlStatement => {
    const st = db.prepare(sql);
    return {
      run(...params: SqlValue[]) {
        const r = st.run(...integersAsBigInt(params));
        return { changes: Number(r.changes), lastInsertRowid: Number(r.lastInsertRowid) };
      },
      get(...params: SqlValue[]): SqlRow | undefined {
        const row = st.get(...integersAsBigInt(params));
        return row === undefined || row === null ? undefined : (row as SqlRow);
      },
      all(...params: SqlValue[]): SqlRow[] {
        return st.all(...integersAsBigInt(params)) as SqlRow[];
      },
    };
  };
  return {
    path,
    exec: (sql) => db.exec(sql),
    prepare,
    transaction: makeTransaction(db.prepare("BEGIN IMMEDIATE"), db.prepare("COMMIT"), db.prepare("ROLLBACK")),
    close: () => db.close(),
  };
}
