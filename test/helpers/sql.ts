/**
 * Test helpers for SQLite: open the running runtime's real driver on a fresh temporary file, and make or
 * remove temporary directories. Works under Node, Bun and Deno (node:fs/node:os/node:path exist on all three).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { SqlDriver } from "../../src/kv/sql-driver.ts";
import { openSqlite } from "../../runtime-adapters/sqlite.ts";

/** Creates a fresh empty directory under the OS temp dir (e.g. /tmp/edgekv-test-AbC123) and returns its path. */
export function makeTempDir(prefix = "edgekv-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Removes a directory made by `makeTempDir` and everything in it; ignores a missing directory. */
export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/**
 * Opens the running runtime's SqlDriver (async because the driver module is loaded with a dynamic import).
 * With `path`, opens (creating if missing) that file or ":memory:"; without it, opens `db.sqlite` in a
 * fresh temporary directory, so WAL and fsync behave as on a real node. The caller closes the driver; the
 * temporary directory is small and left to the OS (its path is `dirname(driver.path)` if a test wants to
 * remove it).
 */
export async function openTestDb(path?: string): Promise<SqlDriver> {
  return openSqlite(path ?? join(makeTempDir(), "db.sqlite"));
}
