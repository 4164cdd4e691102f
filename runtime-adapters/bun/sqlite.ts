/// <reference path="../ambient.d.ts" />
/**
 * The SqlDriver for Bun, over `bun:sqlite` (duties in src/kv/sql-driver.ts). Bun already binds integral
 * numbers as INTEGER and returns blobs as Uint8Array; the normalisations are `get` -> `undefined` where
 * Bun returns `null`, and `close()` finalizing every statement first: Bun closes with sqlite3_close_v2, which
 * otherwise leaves a "zombie" connection holding its locks until the statements are garbage collected, so
 * the next process to open the file got "database is locked".
 */
import { Database, type BunStatement } from "bun:sqlite";
import type { SqlDriver, SqlRow, SqlStatement, SqlValue } from "../../src/kv/sql-driver.ts";
import { makeTransaction, OPEN_PRAGMAS } from "../sql-common.ts";

/**
 * Opens (creating if missing) the SQLite file at `path` (or ":memory:") with edgekv's pragmas (WAL,
 * synchronous=FULL, busy_timeout=5000 ms). Throws bun:sqlite's error if the file cannot be opened.
 */
export function openBunSqlite(path: string): SqlDriver {
  const db = new Database(path, { create: true });
  db.exec(OPEN_PRAGMAS);
  const statements: BunStatement[] = [];
  const raw = (sql: string): BunStatement => {
    const st = db.prepare(sql);
    statements.push(st);
    return st;
  };
  const prepare = (sql: string): SqlStatement => {
    const st = raw(sql);
    return {
      run(...params: SqlValue[]) {
        const r = st.run(...params);
        return { changes: r.changes, lastInsertRowid: Number(r.lastInsertRowid) };
      },
      get(...params: SqlValue[]): SqlRow | undefined {
        const row = st.get(...params);
        return row === null ? undefined : (row as SqlRow);
      },
      all(...params: SqlValue[]): SqlRow[] {
        return st.all(...params) as SqlRow[];
      },
    };
  };
  return {
    path,
    exec: (sql) => db.exec(sql),
    prepare,
    transaction: makeTransaction(raw("BEGIN IMMEDIATE"), raw("COMMIT"), raw("ROLLBACK")),
    close: () => {
      for (const st of statements.splice(0)) st.finalize();
      db.close();
    },
  };
}
