/**
 * Free space of a file system, for clear refusals when it is full (a node that cannot even take its data
 * dir's lock says "the disk is full", not SQLite's "disk I/O error"; src/server/data-dir-lock.ts).
 * `statfsSync` from node:fs works on Node, Bun and Deno alike.
 */
import { statfsSync } from "node:fs";

/**
 * Bytes an unprivileged process may still write on the file system holding `path` (statfs(2) `f_bavail` ×
 * `f_bsize`), or undefined when that cannot be read (no such path, no statfs on this platform). Never throws.
 */
export function freeBytesOf(path: string): number | undefined {
  try {
    const s = statfsSync(path);
    const free = Number(s.bavail) * Number(s.bsize);
    return Number.isFinite(free) && free >= 0 ? free : undefined;
  } catch {
    return undefined;
  }
}
