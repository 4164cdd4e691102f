/// <reference path="../ambient.d.ts" />
/**
 * The SqlDriver over `node:sqlite` `DatabaseSync` (duties in src/kv/sql-driver.ts): used on Deno (>= 2.2)
 * and on Node >= 22.13, where the module is unflagged. node:sqlite binds every JS number as REAL, so
 * integral numbers are passed as BigInt to bind as INTEGER; rows come back with numbers (readBigInts off).
 */
import { DatabaseSync } from "node:sqlite";
import type { SqlDriver, SqlRow, SqlStatement, SqlValue } from "../../src/kv/sql-driver.ts";
import { integersAsBigInt, makeTransaction, OPEN_PRAGMAS } from "../sql-common.ts";

/**
 * Opens (creating if missing) the SQLite file at `path` (or ":memory:") with edgekv's pragmas (WAL,
 * synchronous=FULL, busy_timeout=5000 ms). Throws node:sqlite's error if the file cannot be opened.
 */
export function openNodeSqlite(path: string): SqlDriver {
  const db = new DatabaseSync(path);
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
