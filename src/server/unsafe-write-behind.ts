/**
 * TEST ONLY, deliberately wrong: the storage of a node started with `EDGEKV_UNSAFE_BUG=ack-before-fsync`
 * (read in src/server/node.ts, the place marked `>>> EDGEKV_UNSAFE_BUG`). It models a disk that lies
 * about fsync, so the nemesis harness can prove it catches lost acknowledged writes (issue #5, "a switch
 * that acknowledges writes before fsync"; Jepsen's "lazyfs" idea of losing unsynced writes on a crash).
 *
 * How: every `transaction(fn)` of the node runs inside ONE long-lived SQLite transaction that is committed
 * only every `flushIntervalMs` (a SAVEPOINT per call keeps each call atomic and able to roll back alone).
 * Reads on the same connection see the uncommitted writes, so the node behaves normally — it reports
 * entries durable to Raft (advance), answers AppendEntries, counts its own copy toward a quorum, applies
 * and acknowledges clients — while nothing of the last interval is on disk. A kill -9 rolls the whole
 * open transaction back: the node restarts from its own state of up to `flushIntervalMs` ago. Raft log,
 * hard state, applied index and KV tables roll back together, so the restarted node is coherent (never an
 * applied index beyond its log): the only harm is what a lying disk does, i.e. acknowledged entries and a
 * granted vote forgotten by a majority after a power cut.
 *
 * Statements SQLite refuses inside a transaction (VACUUM INTO, ATTACH, DETACH: snapshots) commit the held
 * transaction first; `PRAGMA synchronous` changes are ignored (SQLite refuses them inside a transaction,
 * and the connection stays FULL so each lazy commit is really durable). Never used in a normal run.
 */
import type { SqlDriver, SqlStatement } from "../kv/sql-driver.ts";

/** Default ms between two lazy commits (the window of acknowledged writes a kill -9 loses). */
export const WRITE_BEHIND_FLUSH_MS = 1000;

/** Statements that SQLite will not run inside a transaction: commit the held one first. */
const OUTSIDE_TXN = /^\s*(VACUUM|ATTACH|DETACH)\b/i;
/** Safety level changes are refused inside a transaction ("Safety level may not be changed ..."). */
const SYNCHRONOUS_PRAGMA = /^\s*PRAGMA\s+synchronous\s*=/i;

/**
 * A `SqlDriver` that holds writes in an open transaction and commits lazily; see the file comment.
 * `flush()` commits now; a timer commits every `flushIntervalMs`; `close()` commits, stops the timer and
 * closes the wrapped driver. Errors of the wrapped driver are rethrown unchanged.
 */
export class WriteBehindSql implements SqlDriver {
  readonly path: string;
  private held = false;
  private depth = 0;
  private readonly timer: ReturnType<typeof setInterval>;

  constructor(
    private readonly inner: SqlDriver,
    flushIntervalMs = WRITE_BEHIND_FLUSH_MS,
  ) {
    this.path = inner.path;
    this.timer = setInterval(() => {
      try {
        this.flush();
      } catch {
        // The next transaction starts a fresh held transaction; a broken database fails there, loudly.
        this.held = false;
      }
    }, flushIntervalMs);
  }

  /** Runs `sql`; see the file comment for the statements treated specially. */
  exec(sql: string): void {
    if (SYNCHRONOUS_PRAGMA.test(sql)) return;
    if (OUTSIDE_TXN.test(sql)) this.flush();
    this.inner.exec(sql);
  }

  prepare(sql: string): SqlStatement {
    return this.inner.prepare(sql);
  }

  /** Runs `fn` atomically inside the held transaction (a SAVEPOINT); durable only at the next flush. */
  transaction<T>(fn: () => T): T {
    if (this.depth > 0) throw new Error("SqlDriver.transaction is not re-entrant");
    if (!this.held) {
      this.inner.exec("BEGIN IMMEDIATE");
      this.held = true;
    }
    this.depth++;
    try {
      this.inner.exec("SAVEPOINT write_behind");
      let result: T;
      try {
        result = fn();
        if (result instanceof Promise) throw new Error("SqlDriver.transaction needs a synchronous function");
      } catch (err) {
        try {
          this.inner.exec("ROLLBACK TO write_behind; RELEASE write_behind");
        } catch {
          // SQLite already rolled the whole transaction back (a fatal error): nothing is held any more.
          this.held = false;
        }
        throw err;
      }
      this.inner.exec("RELEASE write_behind");
      return result;
    } finally {
      this.depth--;
    }
  }

  /** Commits the held transaction (durable: the connection is synchronous=FULL). No-op when nothing is held. */
  flush(): void {
    if (!this.held || this.depth > 0) return;
    this.held = false;
    this.inner.exec("COMMIT");
  }

  /** Commits what is held, stops the timer, closes the wrapped driver. */
  close(): void {
    clearInterval(this.timer);
    try {
      this.flush();
    } finally {
      this.inner.close();
    }
  }
}
