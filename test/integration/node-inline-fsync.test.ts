/**
 * The WAL fsync of a lone Ready inline on the event loop (src/server/node.ts `inlineSyncFits`,
 * `INLINE_FSYNC_MAX_MS`; WalSync.syncNow). A one-node cluster whose syncer counts which way each fsync went:
 * sequential puts (one entry per Ready, nothing in flight) fsync inline; once the inline fdatasyncs take longer
 * than the bound the node goes back to the pool; a failing inline fsync is as fatal as a failing pool one.
 * `walSyncCounts` on the node counts the same two ways. The inline path calls no real fdatasync here and
 * reports `slowMs` as the time it blocked, so the durations the guard sees are the test's to choose, whatever
 * the machine's load (an earlier version blocked for real and a preemption of the test process counted as a
 * slow fsync: it failed in CI on a loaded machine); the adapter's real `syncNow` is in wal-sync.test.ts.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { EdgeNode, INLINE_FSYNC_MAX_MS, INLINE_FSYNC_RETRY_MS, type NodePorts } from "../../src/server/node.ts";
import { singleNodeConfig, testPorts, wrapWalSync } from "../helpers/inprocess-cluster.ts";
import { makeTempDir, removeDir } from "../helpers/sql.ts";

const dir = makeTempDir("edgekv-inline-fsync-");
after(() => removeDir(dir));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Counts each fsync by the way it went; every inline one reports that it blocked `slowMs`; `failWith` fails them. */
class Counting {
  inline = 0;
  pool = 0;
  slowMs = 0;
  failWith: Error | undefined;
  wrap(ports: NodePorts): NodePorts {
    return wrapWalSync(ports, (real) => ({
      sync: () => {
        this.pool++;
        return real.sync();
      },
      syncNow: () => {
        this.inline++;
        if (this.failWith) throw this.failWith;
        return this.slowMs; // a slow disk, as the node measures it
      },
      close: () => real.close(),
    }));
  }
}

const put = (node: EdgeNode, key: string, value: string) => node.fetch(new Request(`http://127.0.0.1/v1/kv/${key}`, { method: "PUT", body: value }));

async function leaderOfOne(name: string, c: Counting, lines: string[]): Promise<EdgeNode> {
  const config = await singleNodeConfig(join(dir, name), "inline-fsync-test");
  const node = await EdgeNode.open(config, c.wrap(await testPorts("n1", lines)));
  await node.start();
  try {
    await settle(node, config.advertiseClientUrl, c, lines);
  } catch (err) {
    await node.stop(); // else the failed test leaves a running node and the test process never exits
    throw err;
  }
  return node;
}

/** Waits until `node` leads, recorded its own URLs and has nothing in flight (one put went inline). */
async function settle(node: EdgeNode, clientUrl: string, c: Counting, lines: string[]): Promise<void> {
  // Leader, and its own URLs recorded: the node announces them through the log (an `update` conf change,
  // EdgeNode.announceSelf) a moment after it knows a leader, and that entry shares a put's Ready (2 entries:
  // pool) if it comes in the middle of the counted puts (seen on Deno).
  const ready = async () => {
    const v = await node.cluster();
    return v.leaderId === "n1" && v.members.find((m) => m.id === "n1")?.clientUrl === clientUrl;
  };
  for (let i = 0; i < 250 && !(await ready()); i++) await sleep(20);
  assert.ok(await ready(), `${JSON.stringify(await node.cluster())}\n${lines.slice(-20).join("\n")}`);
  // A new leader's first entries (its empty entry, the bootstrap configuration) come in Readys of several
  // entries, which go to the pool, and a put or two right after may still find a Ready of them in flight
  // (pool too). Puts until one goes inline: from then on nothing is in flight between sequential puts.
  for (let i = 0; ; i++) {
    assert.ok(i < 20, `no put went inline in 20 (inline ${c.inline}, pool ${c.pool})`);
    const before = c.inline;
    assert.equal((await put(node, `warm-up${i}`, "v")).status, 200);
    if (c.inline > before) break;
  }
}


describe("EdgeNode: a lone Ready's WAL fsync inline", () => {
  it("sequential puts fsync inline; slow inline fsyncs send the node back to the pool", async () => {
    const c = new Counting();
    const lines: string[] = [];
    const node = await leaderOfOne("seq", c, lines);
    try {
      const before = { inline: c.inline, pool: c.pool };
      for (let i = 0; i < 8; i++) {
        const res = await put(node, `k${i}`, `v${i}`);
        assert.equal(res.status, 200, await res.clone().text());
      }
      // One entry per Ready, nothing in flight, fast fdatasyncs: inline, not on the pool.
      assert.deepEqual({ inline: c.inline - before.inline, pool: c.pool - before.pool }, { inline: 8, pool: 0 });
      assert.deepEqual(node.walSyncCounts, { inline: c.inline, pool: c.pool });
      const text = await node.metricsText();
      assert.match(text, new RegExp(`^edgekv_wal_fsyncs_total\\{way="inline"\\} ${c.inline}$`, "m"));
      assert.match(text, new RegExp(`^edgekv_wal_fsyncs_total\\{way="pool"\\} ${c.pool}$`, "m"));
      for (let i = 0; i < 8; i++) assert.equal(await (await node.fetch(new Request(`http://127.0.0.1/v1/kv/k${i}`))).text(), `v${i}`);

      // One slow fdatasync (a disk's p99) leaves the median of the last 8 alone: the next put is inline too.
      c.slowMs = 4 * INLINE_FSYNC_MAX_MS;
      assert.equal((await put(node, "once", "v")).status, 200);
      c.slowMs = 0;
      const afterOne = c.inline;
      assert.equal((await put(node, "next", "v")).status, 200);
      assert.equal(c.inline, afterOne + 1, "one slow fdatasync sent the next put to the pool");

      // A disk whose fdatasync blocks 4 * the bound: once 4 of the last 8 were slow the upper median passes
      // the bound and the node uses the pool (one inline retry per second at most; these puts take less).
      c.slowMs = 4 * INLINE_FSYNC_MAX_MS;
      const slow = { inline: c.inline, pool: c.pool };
      const t0 = performance.now();
      for (let i = 0; i < 12; i++) assert.equal((await put(node, `s${i}`, "v")).status, 200);
      const slowLoopMs = performance.now() - t0;
      const inlineWhileSlow = c.inline - slow.inline;
      // 3 (the window held the one slow fsync above, and 3 more make 4 of 8), plus one retry per
      // INLINE_FSYNC_RETRY_MS should the 12 puts have taken that long on a loaded machine.
      const retries = Math.floor(slowLoopMs / INLINE_FSYNC_RETRY_MS);
      assert.ok(inlineWhileSlow >= 3 && inlineWhileSlow <= 3 + retries, `inline fsyncs while slow: ${inlineWhileSlow} in ${Math.round(slowLoopMs)} ms (expected 3 + at most ${retries} retries)`);
      assert.equal(c.pool - slow.pool, 12 - inlineWhileSlow);
    } finally {
      await node.stop();
    }
  });

  it("a failing inline fsync stops the node (fatal): the put fails and the fatal listener runs", async () => {
    const c = new Counting();
    const lines: string[] = [];
    const node = await leaderOfOne("fatal", c, lines);
    const fatal: Error[] = [];
    node.onFatal((e) => fatal.push(e));
    try {
      c.failWith = Object.assign(new Error("EIO: i/o error, fdatasync"), { code: "EIO" });
      const inlineBefore = c.inline;
      const res = await put(node, "k", "v1");
      assert.ok(res.status >= 500, `expected a 5xx, got ${res.status}`);
      assert.equal(c.inline, inlineBefore + 1, "the put's fsync should have gone inline");
      assert.equal(fatal.length, 1);
      assert.match(fatal[0].message, /fsync of the write-ahead log failed: EIO/);
      assert.equal((await put(node, "k2", "v")).status, 500);
      assert.ok(lines.some((l) => /fatal: Error: fsync of the write-ahead log failed: EIO/.test(l)), lines.slice(-5).join("\n"));
    } finally {
      await node.stop();
    }
  });

  it("a full disk is logged as fatal disk_full with the free bytes, not as a bare storage error (B9)", async () => {
    const c = new Counting();
    const lines: string[] = [];
    const node = await leaderOfOne("full", c, lines);
    try {
      c.failWith = Object.assign(new Error("ENOSPC: no space left on device, fdatasync"), { code: "ENOSPC" });
      assert.ok((await put(node, "k", "v1")).status >= 500);
      const fatal = lines.find((l) => l.includes("fatal:"));
      assert.match(fatal ?? "", /fatal: disk_full: the file system holding .* is full \(\d+ bytes free\) \(fsync of the write-ahead log failed: ENOSPC/);
      assert.match(fatal ?? "", /Acknowledged writes are on disk: free space and restart the node/);
    } finally {
      await node.stop();
    }
  });
});
