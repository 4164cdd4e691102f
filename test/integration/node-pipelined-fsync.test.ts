/**
 * Pipelined persist in EdgeNode (src/server/node.ts handleReady, startSync): Readys are written while an
 * fsync runs, one fsync runs at a time, and a write is acknowledged only once an fsync CALLED AFTER its Ready
 * was written has resolved. A one-node cluster whose syncer holds each `sync()` until the test releases it:
 * the fsync running while k2 is written must not acknowledge k2 (B7's finding: a late fsync marked every
 * Ready in flight durable), and the next fsync starts as soon as that one resolves and covers k2.
 */
import { after, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { EdgeNode, type NodePorts } from "../../src/server/node.ts";
import { singleNodeConfig, testPorts, wrapWalSync } from "../helpers/inprocess-cluster.ts";
import { makeTempDir, removeDir } from "../helpers/sql.ts";

const dir = makeTempDir("edgekv-pipelined-fsync-");
after(() => removeDir(dir));
const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));

/** Each `sync()` call, in call order: the real fdatasync ran; `release` lets the node see it resolve. */
interface HeldSync {
  release: () => void;
  released: boolean;
}

/** Ports whose WAL syncer runs the real fsync, then waits for the test (unless `hold` is false). */
function holdingPorts(ports: NodePorts, held: HeldSync[], state: { hold: boolean }): NodePorts {
  return wrapWalSync(ports, (real) => ({
    sync: () =>
      real.sync().then(
        () =>
          new Promise<void>((resolve) => {
            if (!state.hold) return resolve();
            const h: HeldSync = { released: false, release: () => ((h.released = true), resolve()) };
            held.push(h);
          }),
      ),
    close: () => {
      state.hold = false;
      for (const h of held) if (!h.released) h.release();
      return real.close();
    },
  }));
}

/** "pending" if `p` has not settled within `ms`, else the response's status. */
async function statusWithin(p: Promise<Response>, ms: number): Promise<number | "pending"> {
  let out: number | "pending" = "pending";
  void p.then((r) => (out = r.status));
  await sleep(ms);
  return out;
}

it("an fsync called before a write does not acknowledge it; the next fsync, started at once, does", async () => {
  const lines: string[] = [];
  const config = await singleNodeConfig(join(dir, "n1"), "pipelined-fsync-test-secret");
  const held: HeldSync[] = [];
  const state = { hold: false };
  const node = await EdgeNode.open(config, holdingPorts(await testPorts("n1", lines), held, state));
  try {
    await node.start();
    for (let i = 0; i < 200 && (await node.cluster()).leaderId !== "n1"; i++) await sleep(20);
    assert.equal((await node.cluster()).leaderId, "n1");
    const put = (k: string) => node.fetch(new Request(`http://x/v1/kv/${k}`, { method: "PUT", body: "v" }));
    state.hold = true;
    const k1 = put("k1");
    for (let i = 0; i < 100 && held.length < 1; i++) await sleep(10);
    assert.equal(held.length, 1, "k1's Ready asked for an fsync");
    const k2 = put("k2");
    // k2's Ready is written while k1's fsync runs (pipelined), and asks for no second concurrent fsync.
    await sleep(200);
    assert.equal(held.length, 1, "one fsync at a time");
    const pipelined = Number(/^edgekv_persists_pipelined_total (\d+)$/m.exec(await node.metricsText())?.[1]);
    assert.ok(pipelined >= 1, `k2's Ready was not written while k1's fsync ran (edgekv_persists_pipelined_total ${pipelined})`);
    assert.deepEqual([await statusWithin(k1, 10), await statusWithin(k2, 10)], ["pending", "pending"]);
    held[0]!.release(); // called before k2 was written: acknowledges k1 only
    for (let i = 0; i < 100 && held.length < 2; i++) await sleep(10);
    assert.equal(held.length, 2, "the next fsync starts as soon as the first resolves");
    assert.equal(await statusWithin(k1, 300), 200);
    assert.equal(await statusWithin(k2, 300), "pending", "k2 was acknowledged by an fsync called before its write");
    held[1]!.release();
    assert.equal(await statusWithin(k2, 500), 200);
    const get = await node.fetch(new Request("http://x/v1/kv/k2"));
    assert.equal(await get.text(), "v");
  } finally {
    state.hold = false;
    for (const h of held) if (!h.released) h.release();
    await node.stop();
  }
});
