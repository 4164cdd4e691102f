/**
 * Crash safety of the storage layer with real processes: a child (same runtime as this test) appends
 * batches to the Raft log and applies them through KvStateMachine, printing `ack <batch>` after both
 * commits return; this test SIGKILLs it at a random moment 50 times and after each kill checks that
 * `PRAGMA integrity_check` is ok, the log reopens with no holes and valid checksums, the applied index and
 * the data agree (one key and one revision per applied entry), and no acknowledged batch is missing.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { SqliteRaftLog } from "../../src/kv/raft-log.ts";
import { currentRuntime } from "../../runtime-adapters/runtime.ts";
import { makeTempDir, openTestDb, removeDir } from "../helpers/sql.ts";

const KILLS = 50;
/**
 * Independent children (each on its own database file) run at once: a child needs 1-2 s of start-up on
 * a loaded machine before its first ack, so 50 kills in a row would take minutes; 5 lanes of 10 keep the
 * test near the ~60 s budget while every kill still lands in a busy writer.
 */
const LANES = 5;
const BATCH_ENTRIES = 20; // as in fixtures/crash-child.ts
const FIRST_ACK_WAIT_MS_MAX = 60_000; // generous: child start-up takes seconds on a loaded machine
const root = new URL("../..", import.meta.url).pathname;
const childScript = join(root, "test/integration/fixtures/crash-child.ts");
const dir = makeTempDir("edgekv-crash-");

after(() => removeDir(dir));

/** The command that runs a TypeScript file under the runtime running this test. */
function childCommand(dbPath: string): [string, string[]] {
  const rt = currentRuntime();
  if (rt === "deno") {
    const deno = (globalThis as unknown as { Deno: { execPath(): string } }).Deno;
    return [deno.execPath(), ["run", "-A", childScript, dbPath]];
  }
  if (rt === "bun") return [process.execPath, [childScript, dbPath]];
  return [process.execPath, ["--import", "tsx", childScript, dbPath]];
}

/** A small seeded PRNG (mulberry32) so a failing run can be replayed with EDGEKV_CRASH_SEED. */
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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts the child, waits for its first ack, lets it run `delayMs` more, SIGKILLs exactly it; returns the acked batches. */
async function runAndKill(dbPath: string, delayMs: number): Promise<{ acked: number[]; stderr: string }> {
  const [cmd, args] = childCommand(dbPath);
  const child: ChildProcess = spawn(cmd, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
  const acked: number[] = [];
  let stderr = "";
  let buf = "";
  let exited = false;
  const exit = new Promise<void>((resolve) => child.on("exit", () => ((exited = true), resolve())));
  child.stdout!.on("data", (chunk: Uint8Array) => {
    buf += new TextDecoder().decode(chunk);
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const m = /^ack (\d+)$/.exec(buf.slice(0, nl).trim());
      if (m) acked.push(Number(m[1]));
      buf = buf.slice(nl + 1);
    }
  });
  child.stderr!.on("data", (chunk: Uint8Array) => (stderr += new TextDecoder().decode(chunk)));
  try {
    const t0 = Date.now();
    while (acked.length === 0 && !exited && Date.now() - t0 < FIRST_ACK_WAIT_MS_MAX) await sleep(5);
    if (acked.length === 0) throw new Error(`child produced no ack (exited=${exited}): ${stderr}`);
    await sleep(delayMs);
  } finally {
    if (!exited) child.kill("SIGKILL");
    await exit;
  }
  return { acked, stderr };
}

/** One lane: `kills` times start the child on `dbPath`, kill it, reopen and check. Returns the last acked batch. */
async function lane(lane: number, dbPath: string, kills: number, random: () => number): Promise<{ maxAcked: number; betweenLogAndApply: number }> {
  let maxAcked = 0;
  let betweenLogAndApply = 0;
  for (let k = 0; k < kills; k++) {
    const at = `lane ${lane} kill ${k}`;
    const delayMs = 5 + Math.floor(random() * 76);
    const { acked } = await runAndKill(dbPath, delayMs);
    const lastAck = acked[acked.length - 1];
    assert.ok(lastAck > maxAcked, `${at}: batches continue from the stored log (got ${lastAck} after ${maxAcked})`);
    maxAcked = lastAck;

    const db = await openTestDb(dbPath);
    try {
      assert.equal(db.prepare("PRAGMA integrity_check").get()!.integrity_check, "ok", `${at}: integrity_check`);
      const log = new SqliteRaftLog(db); // throws on a hole in the log
      const meta = (name: string) => Number(db.prepare("SELECT value FROM kv_meta WHERE name = ?").get(name)?.value ?? 0);
      const applied = meta("applied_index");
      const keys = db.prepare("SELECT count(*) AS n FROM kv_keys").get()!.n as number;
      assert.ok(applied >= maxAcked * BATCH_ENTRIES, `${at}: applied ${applied} < acknowledged ${maxAcked * BATCH_ENTRIES}`);
      assert.ok(log.lastIndex() >= applied, `${at}: log last ${log.lastIndex()} behind applied ${applied}`);
      assert.equal(log.lastIndex() % BATCH_ENTRIES, 0, `${at}: a batch was half written`);
      assert.equal(keys, applied, `${at}: one key per applied entry`);
      assert.equal(meta("revision"), applied, `${at}: one revision per applied put`);
      const probe = db.prepare("SELECT count(*) AS n FROM kv_keys WHERE key = ?");
      for (const i of [1, maxAcked * BATCH_ENTRIES, applied]) {
        assert.equal(probe.get(new TextEncoder().encode(`k${i}`))!.n, 1, `${at}: key k${i} present`);
      }
      const tail = log.entries(Math.max(1, log.lastIndex() - 99), log.lastIndex() + 1, Infinity); // verifies checksums
      assert.equal(tail[tail.length - 1].index, log.lastIndex());
      if (log.lastIndex() > applied) betweenLogAndApply++;
    } finally {
      db.close();
    }
  }
  return { maxAcked, betweenLogAndApply };
}

describe("crash safety (" + currentRuntime() + ")", () => {
  it(`survives ${KILLS} SIGKILLs without losing an acknowledged batch`, async () => {
    const seed = Number(process.env.EDGEKV_CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31));
    console.log(`crash test seed ${seed} (replay with EDGEKV_CRASH_SEED=${seed})`);
    const lanes = [];
    for (let l = 0; l < LANES; l++) lanes.push(lane(l, join(dir, `node-${l}.sqlite`), KILLS / LANES, rng(seed + l)));
    // allSettled: a failing lane must not leave the other lanes' children running past the test.
    const settled = await Promise.allSettled(lanes);
    for (const s of settled) if (s.status === "rejected") throw s.reason;
    const results = settled.map((s) => (s as PromiseFulfilledResult<{ maxAcked: number; betweenLogAndApply: number }>).value);
    const acked = results.reduce((a, r) => a + r.maxAcked, 0);
    const between = results.reduce((a, r) => a + r.betweenLogAndApply, 0);
    console.log(`crash test: ${KILLS} kills in ${LANES} lanes, ${acked} batches acknowledged, ${between} kills landed between log write and apply`);
    for (const r of results) assert.ok(r.maxAcked >= KILLS / LANES);
  });
});
