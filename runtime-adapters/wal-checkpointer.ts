/**
 * WAL checkpoints off the event loop (issue #6, write path). SQLite's automatic checkpoint runs inside the
 * COMMIT that pushes the WAL past `wal_autocheckpoint` pages (default 1000), on the committing connection:
 * on a node that is the Ready loop's apply or persist transaction, which then pays for copying ~4 MiB into
 * the database file and fsyncing it (21 % of the leader's wall time was apply, most of it these checkpoints;
 * docs/bench.md). Here the node's connection is set to `wal_autocheckpoint=0` and a worker thread with its
 * own connection (runtime-adapters/wal-checkpoint-worker.ts) checkpoints: PASSIVE every round, TRUNCATE when
 * the -wal file outgrows a bound, so the WAL stays bounded. If the worker fails, `onFail` is called once and
 * the caller turns automatic checkpoints back on (src/server/node.ts). Checkpoints never lose a committed
 * frame; `synchronous` is untouched (docs/storage.md "Checkpoints").
 *
 * Restart under steady writes (`wantsRestart`): the worker's PASSIVE rounds never leave the WAL fully
 * copied at the moment the writer begins a transaction, so SQLite never starts the -wal file over; it grew
 * to the TRUNCATE bound (64 MiB) every few seconds, and each TRUNCATE held the writer's next BEGIN in
 * SQLite's busy handler for 100-300 ms (the put p99 of docs/bench.md, 2026-11-30). The writer is the only
 * one that can fix that cheaply: a PASSIVE checkpoint on ITS connection between two transactions copies
 * what the worker's last round left (one round's writes at most), completes, and its next write starts the
 * WAL over. This object decides when that is worth it; the writer only asks and runs the checkpoint.
 */
import type { Worker } from "node:worker_threads";
import { startTsWorker } from "./snapshot-off-loop.ts";
import type { CheckpointRound, WalCheckpointJob } from "./wal-checkpoint-worker.ts";

const WORKER_URL = new URL("./wal-checkpoint-worker.ts", import.meta.url);

/** Options of `startWalCheckpointer`. */
export interface WalCheckpointerOptions {
  /** Ms between two checkpoint rounds (default 250: often enough that the WAL stays a few MiB under load, rarely enough that a hot page is copied once for many commits). */
  intervalMs?: number;
  /** A -wal file above this many bytes is checkpointed with TRUNCATE (default 64 MiB). */
  truncateBytes?: number;
  /**
   * `wantsRestart()` answers true when the last round saw at least this many WAL frames (default 4096,
   * about 16 MiB of 4 KiB pages: well under the TRUNCATE bound, and rare enough to cost nothing at rest).
   */
  restartFrames?: number;
  /** Called once if the worker fails to start, throws or exits unasked; the worker is gone then. */
  onFail?: (err: Error) => void;
}

/** A running checkpointer; see `startWalCheckpointer`. */
export interface WalCheckpointer {
  /** Resolves after the worker's first round (Node loads tsx in the worker first: up to seconds); never rejects. */
  readonly ready: Promise<void>;
  /** The last round's outcome (undefined before the first one). */
  lastRound(): CheckpointRound | undefined;
  /** Rounds done so far, how many of them were TRUNCATE, and how many synced the database file (`dbSynced`). */
  counts(): { rounds: number; truncates: number; dbSyncs: number };
  /**
   * True when the writer should run one `PRAGMA wal_checkpoint(PASSIVE)` on its own connection between two
   * transactions so that its next write starts the WAL over (see the module comment): the last round saw
   * at least `restartFrames` frames and this round has not been answered true yet. Answers true at most
   * once per round (asking counts as answering), so the writer's extra checkpoint copies one round's writes
   * at most. False before the first round and after a failure.
   */
  wantsRestart(): boolean;
  /** Stops the worker (it closes its connection); resolves when it is gone. Idempotent; never rejects. */
  close(): Promise<void>;
}

/**
 * Starts checkpointing the WAL of the SQLite database at `dbPath` on a worker thread. The caller should set
 * `PRAGMA wal_autocheckpoint=0` on its own connection (else both checkpoint). Never throws: a worker that
 * cannot start is reported through `onFail` (asynchronously).
 */
export function startWalCheckpointer(dbPath: string, opts: WalCheckpointerOptions = {}): WalCheckpointer {
  const job: WalCheckpointJob = { dbPath, intervalMs: opts.intervalMs ?? 250, truncateBytes: opts.truncateBytes ?? 64 * 1024 * 1024 };
  let last: CheckpointRound | undefined;
  let rounds = 0;
  let truncates = 0;
  let dbSyncs = 0;
  /** `rounds` when `wantsRestart` last answered true (-1: never). */
  let restartRound = -1;
  const restartFrames = opts.restartFrames ?? 4096;
  let closing = false;
  let failed = false;
  let worker: Worker | undefined;
  let exited: Promise<void> = Promise.resolve();
  let markReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  const fail = (err: Error) => {
    if (failed || closing) return;
    failed = true;
    markReady();
    void worker?.terminate();
    opts.onFail?.(err);
  };
  try {
    worker = startTsWorker(WORKER_URL, job);
    const w = worker;
    exited = new Promise<void>((resolve) => w.once("exit", () => resolve()));
    w.on("message", (m: CheckpointRound | { kind: "error"; message: string } | { kind: "stopped" }) => {
      if (m.kind === "round") {
        last = m;
        rounds++;
        if (m.mode === "TRUNCATE") truncates++;
        if (m.dbSynced) dbSyncs++;
        markReady();
      } else if (m.kind === "error") {
        fail(new Error(`WAL checkpoint worker: ${m.message}`));
      } else if (m.kind === "stopped") {
        void w.terminate();
      }
    });
    w.on("error", (err: Error) => fail(err));
    w.on("exit", (code: number) => fail(new Error(`WAL checkpoint worker exited with code ${code}`)));
  } catch (err) {
    queueMicrotask(() => fail(err as Error));
  }
  return {
    ready,
    lastRound: () => last,
    counts: () => ({ rounds, truncates, dbSyncs }),
    wantsRestart() {
      if (!last || failed || closing || rounds === restartRound || last.walFrames < restartFrames) return false;
      restartRound = rounds;
      return true;
    },
    async close() {
      if (closing) return exited;
      closing = true;
      markReady();
      if (!worker || failed) return;
      worker.postMessage("stop");
      // A worker stuck in a busy checkpoint is terminated after 6 s (busy_timeout is 5 s).
      const t = setTimeout(() => void worker!.terminate(), 6000);
      await exited;
      clearTimeout(t);
    },
  };
}
