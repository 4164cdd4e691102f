/**
 * Worker-thread body of an off-loop snapshot (runtime-adapters/snapshot-off-loop.ts starts it): opens its
 * OWN connection to the node's SQLite file, makes the snapshot there with `createSnapshot(..., { checkLive:
 * false })` (VACUUM INTO is one read transaction: in WAL mode it copies the state as of its start while the
 * node's connection keeps committing), and posts back `{ ok: true, info }` or `{ ok: false, message }`.
 * Runs under node:worker_threads on Node, Bun and Deno alike, at a lower CPU priority than the node's loop
 * (`lowerThreadPriority`).
 */
import { parentPort, workerData } from "node:worker_threads";
import { createSnapshot } from "../src/kv/snapshot.ts";
import { nodeFsSnapshotFiles } from "./snapshot-files.ts";
import { openSqlite } from "./sqlite.ts";
import { lowerThreadPriority } from "./thread-priority.ts";

/** What the starter passes as `workerData`. */
export interface SnapshotWorkerJob {
  /** The node's database file. */
  dbPath: string;
  /** Snapshot directory. */
  dir: string;
  /** Snapshot files kept after the new one (createSnapshot's `keep`). */
  keep?: number;
}

/** Nice value of the snapshot thread: the copy yields the CPU to the node's event loop (thread-priority.ts). */
const SNAPSHOT_THREAD_NICE = 10;

async function run(job: SnapshotWorkerJob): Promise<void> {
  lowerThreadPriority(SNAPSHOT_THREAD_NICE);
  const db = await openSqlite(job.dbPath);
  try {
    const info = createSnapshot(db, { dir: job.dir, files: nodeFsSnapshotFiles, keep: job.keep, checkLive: false });
    parentPort!.postMessage({ ok: true, info });
  } finally {
    db.close();
  }
}

run(workerData as SnapshotWorkerJob).catch((err: Error) => {
  parentPort!.postMessage({ ok: false, message: err.message });
});
