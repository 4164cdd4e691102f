/// <reference path="../ambient.d.ts" />
/**
 * The SqlDriver for Node (duties in src/kv/sql-driver.ts): `better-sqlite3@12` on Node 20 (our machines),
 * and `node:sqlite` on Node >= 22.13 where it is unflagged (via ../deno/sqlite.ts, the same code Deno uses).
 * better-sqlite3 binds every JS number as REAL, so integral numbers are passed as BigInt to bind as
 * INTEGER; it accepts a plain Uint8Array as a BLOB without copying it, and returns BLOBs as Buffer (a
 * Uint8Array subclass, which the contract allows). The statement adapter is `realBindingDriver`
 * (../sql-common.ts), shared with node:sqlite.
 */
import Database from "better-sqlite3";
import type { SqlDriver } from "../../src/kv/sql-driver.ts";
import { realBindingDriver } from "../sql-common.ts";

/**
 * Opens (creating if missing) the SQLite file at `path` (or ":memory:") with better-sqlite3 and edgekv's
 * pragmas (WAL, synchronous=FULL, busy_timeout=5000 ms). Throws better-sqlite3's error on failure.
 */
export function openBetterSqlite(path: string): SqlDriver {
  return realBindingDriver(new Database(path, { timeout: 5000 }), path);
}

/** True when this Node has an unflagged `node:sqlite` (v22.13+ on the 22 line, v23.4+ after). */
export function nodeHasBuiltinSqlite(version: string = process.versions.node): boolean {
  const [major, minor] = version.split(".").map(Number);
  return major > 23 || (major === 23 && minor >= 4) || (major === 22 && minor >= 13);
}
