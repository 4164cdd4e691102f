/**
 * Storage benchmark (not a test): `npm run bench:storage [-- --runtime node|bun|deno]... [--keys 100000,1000000]`.
 * Spawns itself once per runtime (Node via tsx, Bun, Deno) and prints, per runtime:
 * - Raft log appends per second with batches of 1, 100 and 1000 entries of 256-byte values, each batch one
 *   `SqliteRaftLog.save` = one transaction = one fsync (synchronous=FULL, WAL);
 * - puts per second applied through KvStateMachine (CBOR-encoded commands, 1000 per apply transaction);
 * - snapshot create (VACUUM INTO + fsync + CRC-32C) and restore time and file size for 100k and 1M keys;
 * - the largest resident set size seen (MiB).
 * Each step is bounded in count and time; progress lines go to stderr. Files go to `.tmp/bench-storage`
 * (on the same disk as the data directory would be) and are removed at the end.
 */
import { spawn } from "node:child_process";
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { SqliteRaftLog } from "../src/kv/raft-log.ts";
import { KvStateMachine } from "../src/kv/state-machine.ts";
import { createKvSchema } from "../src/kv/schema.ts";
import { createSnapshot, restoreSnapshot } from "../src/kv/snapshot.ts";
import { decodeCommand, encodeCommand } from "../src/codec/command.ts";
import type { Entry } from "../src/raft/types.ts";
import type { SqlDriver } from "../src/kv/sql-driver.ts";
import { openSqlite } from "../runtime-adapters/sqlite.ts";
import { currentRuntime } from "../runtime-adapters/runtime.ts";
import { nodeFsSnapshotFiles } from "../runtime-adapters/snapshot-files.ts";
import { commandLine } from "./bench/args.ts";

const USAGE = `usage: npm run bench:storage -- [--runtime node|bun|deno]... [--keys N,N...]

Storage benchmark (not a test): per runtime (each in its own child process), Raft log appends per second
in batches of 1, 100 and 1000 entries (one fsync each), puts per second applied through KvStateMachine,
snapshot create and restore time and size, and the largest resident set size. Files under .tmp/ (removed).

  --runtime R     node, bun or deno; repeat for several (default: all three)
  --keys N,N...   key counts of the snapshot step (default 100000,1000000)
  -h, --help      this text

Exit status: 0 done, 1 failed, 2 bad arguments.`;

const root = new URL("..", import.meta.url).pathname;
const self = join(root, "scripts/bench-storage.ts");
const STEP_MS_MAX = 4000;

interface Result {
  runtime: string;
  append: Array<{ batch: number; entriesPerSec: number; fsyncsPerSec: number; batches: number }>;
  applyPutsPerSec: number;
  snapshots: Array<{ keys: number; createMs: number; restoreMs: number; sizeMiB: number }>;
  rssMiBMax: number;
}

let rssMax = 0;
function sampleRss(): void {
  rssMax = Math.max(rssMax, process.memoryUsage().rss);
}

function progress(msg: string): void {
  process.stderr.write(`[${currentRuntime()}] ${msg}\n`);
}

function ascii(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** Appends batches of `batch` entries (256-byte values) until 20000 entries, 2000 batches or STEP_MS_MAX. */
function benchAppend(log: SqliteRaftLog, batch: number): Result["append"][number] {
  const value = new Uint8Array(256).fill(0x61);
  let next = log.lastIndex() + 1;
  let batches = 0;
  const t0 = performance.now();
  while (batches < 2000 && (batches + 1) * batch <= 20_000 && performance.now() - t0 < STEP_MS_MAX) {
    const entries: Entry[] = [];
    for (let i = 0; i < batch; i++) entries.push({ index: next + i, term: 1, type: "normal", data: value });
    log.save({ entries, hardState: { term: 1, vote: "", commit: next - 1 } });
    next += batch;
    batches++;
  }
  const sec = (performance.now() - t0) / 1000;
  sampleRss();
  return { batch, entriesPerSec: Math.round((batches * batch) / sec), fsyncsPerSec: Math.round(batches / sec), batches };
}

/** Applies put commands through the state machine, 1000 per transaction, until 50k puts or STEP_MS_MAX. */
function benchApply(db: SqlDriver): number {
  const sm = new KvStateMachine(db, { decode: decodeCommand });
  const value = new Uint8Array(256).fill(0x62);
  let index = sm.appliedIndex() + 1;
  let puts = 0;
  const t0 = performance.now();
  while (puts < 50_000 && performance.now() - t0 < STEP_MS_MAX) {
    const entries: Entry[] = [];
    for (let i = 0; i < 1000; i++, index++) {
      entries.push({ index, term: 1, type: "normal", data: encodeCommand({ request: { op: "put", key: ascii(`key-${index}`), value } }) });
    }
    sm.applyEntries(entries);
    puts += 1000;
  }
  sampleRss();
  return Math.round(puts / ((performance.now() - t0) / 1000));
}

/** Fills kv_keys with `keys` keys (100-byte values) straight through SQL, 50k rows per transaction. */
function fillKeys(db: SqlDriver, keys: number): void {
  createKvSchema(db);
  const put = db.prepare("INSERT INTO kv_keys (key, value, create_revision, mod_revision, version, lease) VALUES (?, ?, ?, ?, 1, 0)");
  const meta = db.prepare("INSERT OR REPLACE INTO kv_meta (name, value) VALUES (?, ?)");
  const value = new Uint8Array(100).fill(0x63);
  for (let from = 0; from < keys; from += 50_000) {
    db.transaction(() => {
      for (let i = from; i < Math.min(keys, from + 50_000); i++) put.run(ascii(`key-${String(i).padStart(8, "0")}`), value, i + 1, i + 1);
      meta.run("applied_index", Math.min(keys, from + 50_000));
      meta.run("applied_term", 1);
      meta.run("revision", Math.min(keys, from + 50_000));
      meta.run("conf_state", JSON.stringify({ voters: ["n1"], votersOutgoing: [], learners: [] }));
    });
    if (from % 250_000 === 0 && from > 0) progress(`  filled ${from} keys`);
    sampleRss();
  }
}

async function benchSnapshot(dir: string, keys: number): Promise<Result["snapshots"][number]> {
  progress(`snapshot: filling ${keys} keys`);
  const src = await openSqlite(join(dir, `snap-src-${keys}.sqlite`));
  fillKeys(src, keys);
  progress(`snapshot: creating`);
  const t0 = performance.now();
  const info = createSnapshot(src, { dir: join(dir, `snaps-${keys}`), files: nodeFsSnapshotFiles });
  const createMs = performance.now() - t0;
  sampleRss();
  progress(`snapshot: restoring`);
  const dst = await openSqlite(join(dir, `snap-dst-${keys}.sqlite`));
  const log = new SqliteRaftLog(dst);
  const t1 = performance.now();
  restoreSnapshot(dst, log, info.path, { files: nodeFsSnapshotFiles, expected: { crc32c: info.crc32c, sizeBytes: info.sizeBytes } });
  const restoreMs = performance.now() - t1;
  sampleRss();
  src.close();
  dst.close();
  return { keys, createMs: Math.round(createMs), restoreMs: Math.round(restoreMs), sizeMiB: Math.round((info.sizeBytes / 1048576) * 10) / 10 };
}

async function child(keysList: number[]): Promise<void> {
  const rt = currentRuntime();
  const dir = join(root, ".tmp", `bench-storage-${rt}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  try {
    const db = await openSqlite(join(dir, "log.sqlite"));
    const log = new SqliteRaftLog(db);
    const append: Result["append"] = [];
    for (const batch of [1, 100, 1000]) {
      progress(`append: batches of ${batch}`);
      append.push(benchAppend(log, batch));
    }
    progress("apply: puts through KvStateMachine");
    const applyPutsPerSec = benchApply(db);
    db.close();
    const snapshots: Result["snapshots"] = [];
    for (const keys of keysList) snapshots.push(await benchSnapshot(dir, keys));
    const result: Result = { runtime: rt, append, applyPutsPerSec, snapshots, rssMiBMax: Math.round(rssMax / 1048576) };
    console.log("RESULT " + JSON.stringify(result));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function runChild(runtime: string, keysArg: string): Promise<Result | undefined> {
  const [cmd, args] =
    runtime === "node"
      ? [process.execPath, ["--import", "tsx", self, "--child", "--keys", keysArg]]
      : runtime === "bun"
        ? ["npx", ["--no-install", "bun", self, "--child", "--keys", keysArg]]
        : ["npx", ["--no-install", "deno", "run", "-A", self, "--child", "--keys", keysArg]];
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { cwd: root, stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    p.stdout.on("data", (c: Uint8Array) => (out += new TextDecoder().decode(c)));
    p.on("close", (code) => {
      const line = out.split("\n").find((l) => l.startsWith("RESULT "));
      if (code !== 0 || !line) {
        console.error(`${runtime}: benchmark failed (exit ${code})\n${out}`);
        resolve(undefined);
      } else resolve(JSON.parse(line.slice(7)) as Result);
    });
  });
}

function print(r: Result): void {
  console.log(`\n${r.runtime}`);
  for (const a of r.append) console.log(`  append, batches of ${String(a.batch).padStart(4)}: ${String(a.entriesPerSec).padStart(8)} entries/s  (${a.fsyncsPerSec} fsyncs/s, ${a.batches} batches)`);
  console.log(`  apply puts via KvStateMachine: ${r.applyPutsPerSec} puts/s`);
  for (const s of r.snapshots) console.log(`  snapshot ${s.keys} keys: create ${s.createMs} ms, restore ${s.restoreMs} ms, ${s.sizeMiB} MiB`);
  console.log(`  max RSS: ${r.rssMiBMax} MiB`);
}

async function main(): Promise<void> {
  // --child: the per-runtime child this script spawns (internal, not in the usage text)
  const cli = commandLine(USAGE, { runtime: { type: "string", multiple: true }, keys: { type: "string" }, child: { type: "boolean" } });
  const keysArg = cli.str("keys", "100000,1000000");
  if (!/^\d+(,\d+)*$/.test(keysArg)) cli.usageError(`--keys must be comma-separated counts, got ${JSON.stringify(keysArg)}`);
  if (cli.flag("child")) return child(keysArg.split(",").map(Number));
  const runtimes: string[] = cli.strs("runtime");
  for (const rt of runtimes) if (!["node", "bun", "deno"].includes(rt)) cli.usageError(`--runtime must be node, bun or deno, got ${JSON.stringify(rt)}`);
  if (runtimes.length === 0) runtimes.push("node", "bun", "deno");
  console.log(`edgekv storage benchmark, ${new Date().toISOString()}, runtimes ${runtimes.join(", ")}, snapshot keys ${keysArg}`);
  for (const rt of runtimes) {
    const r = await runChild(rt, keysArg);
    if (r) print(r);
  }
}

await main();
