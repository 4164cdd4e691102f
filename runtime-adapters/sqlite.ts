/**
 * Opens the SqlDriver for the running runtime (bun:sqlite on Bun, node:sqlite on Deno and on Node >= 22.13,
 * better-sqlite3@12 on older Node). The driver module is loaded with a dynamic import so that no runtime
 * ever loads another runtime's module, which is why opening is async.
 */
import type { OpenSqlDriver, SqlDriver } from "../src/kv/sql-driver.ts";
import { currentRuntime } from "./runtime.ts";

let cached: OpenSqlDriver | undefined;

/**
 * Resolves the open function of this runtime's driver (loaded once, then cached). Use it where many files
 * are opened; `openSqlite` is the one-shot form.
 */
export async function loadSqliteDriver(): Promise<OpenSqlDriver> {
  if (cached) return cached;
  const rt = currentRuntime();
  if (rt === "bun") {
    cached = (await import("./bun/sqlite.ts")).openBunSqlite;
  } else if (rt === "deno") {
    cached = (await import("./deno/sqlite.ts")).openNodeSqlite;
  } else {
    const node = await import("./node/sqlite.ts");
    cached = node.nodeHasBuiltinSqlite() ? (await import("./deno/sqlite.ts")).openNodeSqlite : node.openBetterSqlite;
  }
  return cached;
}

/**
 * Opens (creating if missing) the SQLite database at `path` (":memory:" for an in-memory one) with edgekv's
 * pragmas. Throws the driver's error if it cannot be opened.
 */
export async function openSqlite(path: string): Promise<SqlDriver> {
  return (await loadSqliteDriver())(path);
}
