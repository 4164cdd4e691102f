/// <reference path="../ambient.d.ts" />
/**
 * The SqlDriver over `node:sqlite` `DatabaseSync` (duties in src/kv/sql-driver.ts): used on Deno (>= 2.2)
 * and on Node >= 22.13, where the module is unflagged. node:sqlite binds every JS number as REAL, so
 * integral numbers are passed as BigInt to bind as INTEGER; rows come back with numbers (readBigInts off).
 * The statement adapter is `realBindingDriver` (../sql-common.ts), shared with better-sqlite3.
 */
import { DatabaseSync } from "node:sqlite";
import type { SqlDriver } from "../../src/kv/sql-driver.ts";
import { realBindingDriver } from "../sql-common.ts";

/**
 * Opens (creating if missing) the SQLite file at `path` (or ":memory:") with edgekv's pragmas (WAL,
 * synchronous=FULL, busy_timeout=5000 ms). Throws node:sqlite's error if the file cannot be opened.
 */
export function openNodeSqlite(path: string): SqlDriver {
  return realBindingDriver(new DatabaseSync(path), path);
}
