/**
 * Pipelined persist in EdgeNode (src/server/node.ts handleReady) when the runtime's thread pool finishes WAL
 * fsyncs out of order (B7's finding: 796 of 2 000 rounds of 4 concurrent fdatasyncs on Node). A one-node
 * cluster whose syncer holds each `sync()` until the test releases it: a write is acknowledged only once an
 * fsync called after its Ready was written has resolved; a late fsync from before that write must not
 * finish it (the node marked every Ready in flight durable when the Ready of a late fsync was already gone).
 */
import { after, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadConfig } from "../../src/config/load.ts";
import { EdgeNode, type NodePorts } from "../../src/server/node.ts";
import { freePort, testPorts } from "../helpers/inprocess-cluster.ts";
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
  return {
    ...ports,
    createWalSync: (path) => {
      const real = ports.createWalSync!(path);
      return {
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
      };
    },
  };
}

/** "pending" if `p` has not settled within `ms`, else the response's status. */
async function statusWithin(p: Promise<Response>, ms: number): Promise<number | "pending"> {
  let out: number | "pending" = "pending";
  void p.then((r) => (out = r.status));
  await sleep(ms);
  return out;
}

it("a late fsync from before a write does not acknowledge it; the write's own fsync does", async () => {
  const port = await freePort();
  const lines: string[] = [];
  const config = loadConfig({
    argv: ["--node-id", "n1", "--peers", `n1=http://127.0.0.1:${port}`, "--cluster-secret", "pipelined-fsync-test-secret", "--data-dir", join(dir, "n1"), "--peer-port", String(port)],
    env: {},
  });
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
    const k2 = put("k2");
    for (let i = 0; i < 100 && held.length < 2; i++) await sleep(10);
    assert.equal(held.length, 2, "k1's and k2's Readys each asked for an fsync");
    const late = held[0]!;
    // k2's fsync covers k1's write too: releasing only it acknowledges both (and the Readys after them).
    for (let round = 0; round < 20; round++) {
      for (const h of held.slice(1)) if (!h.released) h.release();
      await sleep(10);
    }
    assert.deepEqual([await statusWithin(k1, 200), await statusWithin(k2, 10)], [200, 200]);
    assert.equal(late.released, false);
    const before = held.length;
    const k3 = put("k3");
    for (let i = 0; i < 100 && held.length === before; i++) await sleep(10);
    const own = held.slice(before);
    assert.equal(own.length, 1, "k3's Ready asked for its own fsync");
    late.release(); // called before k3 was written: covers nothing of it
    assert.equal(await statusWithin(k3, 300), "pending", "k3 was acknowledged by an fsync called before its write");
    own[0]!.release();
    assert.equal(await statusWithin(k3, 500), 200);
    const get = await node.fetch(new Request("http://x/v1/kv/k3"));
    assert.equal(await get.text(), "v");
  } finally {
    state.hold = false;
    for (const h of held) if (!h.released) h.release();
    await node.stop();
  }
});
