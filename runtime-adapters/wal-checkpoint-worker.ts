/**
 * Worker-thread body of the WAL checkpointer (runtime-adapters/wal-checkpointer.ts starts it): opens its OWN
 * connection to the node's SQLite file and, every `intervalMs`, runs `PRAGMA wal_checkpoint(PASSIVE)`
 * (copies committed WAL frames into the database file without taking the write lock, so the node's commits
 * go on meanwhile). When the -wal file is larger than `truncateBytes` it runs `wal_checkpoint(TRUNCATE)`
 * instead, which waits for the writer (busy_timeout) and cuts the file to zero bytes: PASSIVE alone cannot
 * shrink the file, and under a steady stream of commits it may never catch up far enough for the writer to
 * wrap (SQLite docs wal.html "Avoiding Excessively Large WAL Files"). Checkpoints never drop a committed frame
 * (SQLite copies then syncs the database before it resets the WAL), so crash safety is the driver's, unchanged.
 *
 * After a round that copied frames the worker also fdatasyncs the database file itself. SQLite syncs the
 * database only when a checkpoint reaches the end of the WAL; under steady writes a PASSIVE round never does
 * (frames arrive while it copies), so every page it copied stayed dirty in the page cache until the node's
 * restart checkpoint (wal-checkpointer.ts `wantsRestart`), the one that does reach the end, flushed them all on
 * the node's event loop: 30-40 ms per restart at 4096 frames and 80-240 ms at 32 768, growing with the pages
 * copied since the last restart. With a sync per round that checkpoint flushes only its own few pages (1-5 ms,
 * at most 8 in the probe; docs/bench.md "WAL restarts" and "The database sync the worker skipped"). A round that
 * seems to have reached the WAL's end is synced too: SQLite's own sync at the end of a checkpoint runs only when
 * the last frame it copied is still the WAL's last frame when the copy ends, and the round's result (`log`,
 * `checkpointed`) describes the WAL as it was when the round began. Under steady writes the writer appends while
 * the worker copies, so a round reported as complete was usually not synced by SQLite (measured: the restart
 * checkpoint then took 20-36 ms for the 40-160 frames it copied itself, flushing the rounds' ~20 MB; 1-5 ms once
 * every such round synced; docs/bench.md "The database sync the worker skipped"). A round with nothing copied
 * since the last sync is not synced. The extra sync is never needed for safety.
 * Posts one `CheckpointRound` per round; stops on the message "stop". Runs under node:worker_threads on Node,
 * Bun and Deno alike.
 */
import { closeSync, fdatasyncSync, openSync, statSync } from "node:fs";
import { parentPort, workerData } from "node:worker_threads";
import { openSqlite } from "./sqlite.ts";

/** What the starter passes as `workerData`. */
export interface WalCheckpointJob {
  /** The node's database file (its WAL is `<dbPath>-wal`). */
  dbPath: string;
  /** Ms between two checkpoint rounds. */
  intervalMs: number;
  /** A -wal file larger than this many bytes is checkpointed with TRUNCATE (then it is 0 bytes). */
  truncateBytes: number;
}

/** One round's outcome, as posted to the starter (fields of SQLite's wal_checkpoint result row). */
export interface CheckpointRound {
  kind: "round";
  /** "PASSIVE" or "TRUNCATE". */
  mode: "PASSIVE" | "TRUNCATE";
  /** 1 when the checkpoint could not finish (a reader or the writer held it back), else 0. */
  busy: number;
  /** Frames in the WAL at the checkpoint (-1 when unknown). */
  walFrames: number;
  /** Frames copied into the database file so far (-1 when unknown). */
  checkpointedFrames: number;
  /** Size of the -wal file after the round, bytes (0 when missing). */
  walBytes: number;
  /** True when the worker fdatasynced the database file after this round (it copied frames since the last sync; see the module comment for why a round that reached the WAL's end is synced too). */
  dbSynced: boolean;
}

function walSize(dbPath: string): number {
  try {
    return statSync(`${dbPath}-wal`).size;
  } catch {
    return 0;
  }
}

async function run(job: WalCheckpointJob): Promise<void> {
  const db = await openSqlite(job.dbPath);
  // This connection never writes, but make sure it never checkpoints on its own terms either.
  db.exec("PRAGMA wal_autocheckpoint=0");
  // Opened once: the node holds its data dir locked and never replaces its database file.
  const dbFd = openSync(job.dbPath, "r");
  /** `${walFrames}/${checkpointedFrames}` of the last round whose copies were synced ("" before any). */
  let syncedAt = "";
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  const closeAll = () => {
    try {
      db.close();
    } catch {
      // already closed
    }
    try {
      closeSync(dbFd);
    } catch {
      // already closed
    }
  };
  const round = () => {
    if (stopped) return;
    try {
      const mode = walSize(job.dbPath) > job.truncateBytes ? "TRUNCATE" : "PASSIVE";
      const row = db.prepare(`PRAGMA wal_checkpoint(${mode})`).get() ?? {};
      const walFrames = Number(row.log ?? -1);
      const checkpointedFrames = Number(row.checkpointed ?? -1);
      // Copied something since the last sync (the pair moves on every copy; a WAL restart resets it). Also
      // when the round reached the end of the WAL it saw: SQLite skipped its own sync if the writer appended
      // during the copy (module comment), and a sync with nothing dirty costs little.
      const at = `${walFrames}/${checkpointedFrames}`;
      const dbSynced = checkpointedFrames > 0 && at !== syncedAt;
      if (dbSynced) {
        fdatasyncSync(dbFd);
        syncedAt = at;
      }
      const msg: CheckpointRound = {
        kind: "round",
        mode,
        busy: Number(row.busy ?? 0),
        walFrames,
        checkpointedFrames,
        walBytes: walSize(job.dbPath),
        dbSynced,
      };
      parentPort!.postMessage(msg);
    } catch (err) {
      // A busy TRUNCATE ("database is locked" after busy_timeout) is not fatal: the next round tries again.
      if (!/locked|busy/i.test((err as Error).message)) throw err;
    }
    timer = setTimeout(() => {
      try {
        round();
      } catch (err) {
        fail(err as Error);
      }
    }, job.intervalMs);
  };
  const fail = (err: Error) => {
    stopped = true;
    closeAll();
    parentPort!.postMessage({ kind: "error", message: err.message });
  };
  parentPort!.on("message", (m: unknown) => {
    if (m !== "stop" || stopped) return;
    stopped = true;
    clearTimeout(timer);
    closeAll();
    // The starter terminates the thread on this answer (Deno's parentPort has no close()).
    parentPort!.postMessage({ kind: "stopped" });
  });
  round();
}

run(workerData as WalCheckpointJob).catch((err: Error) => {
  parentPort!.postMessage({ kind: "error", message: err.message });
});
