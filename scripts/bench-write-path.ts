/**
 * Write-path micro benchmark (not a test): `node --import tsx scripts/bench-write-path.ts [--keys 100000]
 * [--batch 20] [--puts 20000] [--wal-pages 1000] [--checkpoint-worker 1]`, or the same file under `npx bun` / `npx deno run -A`.
 * Mimics what one node does per Ready for a put workload, in one process, without HTTP or peers:
 * `SqliteRaftLog.save` of a batch of CBOR-encoded put commands (synchronous=FULL: one fsync), then
 * `KvStateMachine.applyEntries` of the same batch (synchronous=NORMAL), random keys out of `--keys` with
 * 256-byte values, over a store pre-filled with those keys. Prints ms per entry for each half and the
 * process CPU time per entry, which, unlike req/s of the HTTP benchmark, hardly depends on the machine's
 * other load. Files go to a temp dir, removed at the end.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { SqliteRaftLog } from "../src/kv/raft-log.ts";
import { KvStateMachine } from "../src/kv/state-machine.ts";
import { decodeCommand, encodeCommand } from "../src/codec/command.ts";
import type { Entry } from "../src/raft/types.ts";
import { openSqlite } from "../runtime-adapters/sqlite.ts";
import { currentRuntime } from "../runtime-adapters/runtime.ts";
import { startWalCheckpointer } from "../runtime-adapters/wal-checkpointer.ts";
import { commandLine } from "./bench/args.ts";

const USAGE = `usage: node --import tsx scripts/bench-write-path.ts [options]   (or under npx bun / npx deno run -A)

Write-path micro benchmark (not a test): persist (SqliteRaftLog.save, one fsync) then apply
(KvStateMachine.applyEntries) of batches of put commands, random keys over a pre-filled store, 256-byte
values, one process, no HTTP or peers. Prints ms per entry for each half and CPU ms per entry.

  --keys N                 keys pre-filled and drawn from (default 100000)
  --batch N                entries per persist + apply (default 20)
  --puts N                 puts in all (default 20000)
  --wal-pages N            wal_autocheckpoint pages; 0 leaves the default, --wal-pages=-1 passes 0 (never) (default 0)
  --checkpoint-worker 0|1  1: checkpoints on a worker thread and wal_autocheckpoint=0, as a node does (default 0)
  --pragmas SQL            extra statements run on the connection after open, e.g. "PRAGMA cache_size=-65536"
  -h, --help               this text

Exit status: 0 done, 1 failed, 2 bad arguments.`;
const cli = commandLine(USAGE, { keys: { type: "string" }, batch: { type: "string" }, puts: { type: "string" }, "wal-pages": { type: "string" }, "checkpoint-worker": { type: "string" }, pragmas: { type: "string" } });
const keys = cli.int("keys", 100_000, 1, 100_000_000);
const batch = cli.int("batch", 20, 1, 100_000);
const puts = cli.int("puts", 20_000, 1, 100_000_000);
const walPages = cli.int("wal-pages", 0, -1, 1_000_000_000); // 0: leave the default; -1: pass 0 (never auto-checkpoint)
// 1: checkpoints on a worker thread (runtime-adapters/wal-checkpointer.ts) and wal_autocheckpoint=0, as a node does
const checkpointWorker = cli.int("checkpoint-worker", 0, 0, 1) === 1;
const pragmas = cli.str("pragmas", "");

function keyOf(i: number): Uint8Array {
  const s = `key-${String(i).padStart(8, "0")}`;
  const out = new Uint8Array(s.length);
  for (let j = 0; j < s.length; j++) out[j] = s.charCodeAt(j);
  return out;
}

/** Deterministic PRNG (mulberry32) so runs compare like for like. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "edgekv-bench-wp-"));
  try {
    const db = await openSqlite(join(dir, "edgekv.db"));
    if (pragmas) db.exec(pragmas);
    if (walPages !== 0) db.exec(`PRAGMA wal_autocheckpoint=${Math.max(0, walPages)}`);
    const log = new SqliteRaftLog(db);
    const kv = new KvStateMachine(db, { decode: decodeCommand });
    const value = new Uint8Array(256).fill(0x62);
    let index = 0;
    const fill = (n: number, pick: (i: number) => number): Entry[] => {
      const out: Entry[] = [];
      for (let i = 0; i < n; i++) {
        index++;
        out.push({ index, term: 1, type: "normal", data: encodeCommand({ request: { op: "put", key: keyOf(pick(i)), value } }) });
      }
      return out;
    };
    // Pre-fill through the same path, in big batches (not timed).
    for (let from = 0; from < keys; from += 1000) {
      const es = fill(Math.min(1000, keys - from), (i) => from + i);
      log.save({ entries: es, hardState: { term: 1, vote: "n1", commit: index } });
      db.exec("PRAGMA synchronous=NORMAL");
      kv.applyEntries(es);
      db.exec("PRAGMA synchronous=FULL");
    }
    const checkpointer = checkpointWorker ? startWalCheckpointer(db.path) : undefined;
    if (checkpointer) {
      db.exec("PRAGMA wal_autocheckpoint=0");
      await checkpointer.ready;
    }
    const rand = rng(42);
    let persistMs = 0;
    let applyMs = 0;
    const cpu0 = cpuMs();
    const t0 = performance.now();
    for (let done = 0; done < puts; done += batch) {
      const es = fill(batch, () => Math.floor(rand() * keys));
      const a = performance.now();
      log.save({ entries: es, hardState: { term: 1, vote: "n1", commit: index - batch } });
      const b = performance.now();
      db.exec("PRAGMA synchronous=NORMAL");
      kv.applyEntries(es);
      db.exec("PRAGMA synchronous=FULL");
      const c = performance.now();
      persistMs += b - a;
      applyMs += c - b;
    }
    const wallMs = performance.now() - t0;
    const cpu = cpuMs() - cpu0;
    await checkpointer?.close();
    db.close();
    const per = (ms: number) => (ms / puts).toFixed(4);
    process.stdout.write(
      `${currentRuntime()}: ${puts} puts in batches of ${batch} over ${keys} keys${walPages ? `, wal_autocheckpoint=${walPages}` : ""}${pragmas ? `, ${pragmas}` : ""}${checkpointer ? `, checkpoint worker (${checkpointer.counts().rounds} rounds, ${checkpointer.counts().truncates} truncates)` : ""}: ` +
        `${Math.round(puts / (wallMs / 1000))} puts/s; ms/entry persist ${per(persistMs)}, apply ${per(applyMs)}, CPU ${per(cpu)}\n`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
