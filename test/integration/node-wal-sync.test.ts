/**
 * The Raft log's fsync off the event loop (NodePorts.createWalSync, runtime-adapters/wal-sync.ts): a node
 * writes a Ready's entries without an inline fsync, and only after its WAL syncer resolves does it count
 * them as its own (a leader) or acknowledge them (a follower). Each node here gets a gated syncer: `sync()`
 * calls wait until the test opens the gate, so "acknowledged before durable" would show as a write that
 * completes while the gates are shut. Also: a failed fsync stops the node (fatal, never retried). The real
 * adapter's own cases (fsync, close, missing, deleted or replaced -wal file) are in
 * test/integration/wal-sync.test.ts.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { EdgeNode, type NodePorts } from "../../src/server/node.ts";
import { InProcessCluster, singleNodeConfig, testPorts, wrapWalSync } from "../helpers/inprocess-cluster.ts";
import { makeTempDir, removeDir } from "../helpers/sql.ts";
import { within } from "../helpers/within.ts";

const dir = makeTempDir("edgekv-node-walsync-");
after(() => removeDir(dir));

/** A WAL syncer whose `sync()` settles only when the gate is open (or fails every call when told to). */
class Gate {
  open = false;
  calls = 0;
  failWith: Error | undefined;
  private waiting: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  wrap(ports: NodePorts): NodePorts {
    return wrapWalSync(ports, (real) => ({
      sync: () => {
        this.calls++;
        return real.sync().then(
          () =>
            new Promise<void>((resolve, reject) => {
              if (this.failWith) reject(this.failWith);
              else if (this.open) resolve();
              else this.waiting.push({ resolve, reject });
            }),
        );
      },
      close: () => {
        this.release();
        return real.close();
      },
    }));
  }
  release(): void {
    this.open = true;
    for (const w of this.waiting.splice(0)) w.resolve();
  }
  fail(err: Error): void {
    this.failWith = err;
    for (const w of this.waiting.splice(0)) w.reject(err);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Settles `p` into "pending" if it has not settled within `ms` (leaving no timer behind: helpers/within.ts). */
function pendingAfter<T>(p: Promise<T>, ms: number): Promise<T | "pending"> {
  return within(p, ms, "pending" as const);
}

async function oneNode(name: string, gate: Gate, lines: string[]) {
  const config = await singleNodeConfig(join(dir, name), "wal-sync-test");
  const node = await EdgeNode.open(config, gate.wrap(await testPorts("n1", lines)));
  await node.start();
  return node;
}

const put = (node: EdgeNode, key: string, value: string) => node.fetch(new Request(`http://127.0.0.1/v1/kv/${key}`, { method: "PUT", body: value }));

describe("EdgeNode WAL fsync off the event loop", () => {
  it("a one-node cluster acknowledges a put only after its WAL fsync resolved", async () => {
    const gate = new Gate();
    const lines: string[] = [];
    // The election's own term/vote write goes through the syncer too: let it through, then shut the gate.
    gate.release();
    const node = await oneNode("single", gate, lines);
    try {
      for (let i = 0; i < 100 && (await node.cluster()).leaderId !== "n1"; i++) await sleep(20);
      assert.equal((await node.cluster()).leaderId, "n1", lines.slice(-20).join("\n"));
      gate.open = false;
      const callsBefore = gate.calls;
      const pending = put(node, "k", "v1");
      assert.equal(await pendingAfter(pending, 500), "pending", "the put was acknowledged before its fsync resolved");
      assert.ok(gate.calls > callsBefore, "the node should have asked the WAL syncer to fsync the entry");
      // The event loop is free meanwhile: a stale read answers at once.
      const stale = await node.fetch(new Request("http://127.0.0.1/v1/kv/k?consistency=stale"));
      assert.equal(stale.status, 404);
      gate.release();
      const res = await pending;
      assert.equal(res.status, 200, await res.clone().text());
      const got = await node.fetch(new Request("http://127.0.0.1/v1/kv/k"));
      assert.equal(await got.text(), "v1");
    } finally {
      await node.stop();
    }
  });

  it("a failed fsync stops the node (fatal): the waiting put fails and the fatal listener runs", async () => {
    const gate = new Gate();
    const lines: string[] = [];
    gate.release();
    const node = await oneNode("fatal", gate, lines);
    const fatal: Error[] = [];
    node.onFatal((e) => fatal.push(e));
    try {
      for (let i = 0; i < 100 && (await node.cluster()).leaderId !== "n1"; i++) await sleep(20);
      gate.open = false;
      const pending = put(node, "k", "v1");
      await sleep(100);
      gate.fail(Object.assign(new Error("EIO: i/o error, fsync"), { code: "EIO" }));
      const res = await pending;
      assert.ok(res.status >= 500, `expected a 5xx, got ${res.status}`);
      assert.equal(fatal.length, 1);
      assert.match(fatal[0].message, /fsync of the write-ahead log failed: EIO/);
      const after = await put(node, "k2", "v");
      assert.equal(after.status, 500);
      assert.match(await after.text(), /fatal error/);
    } finally {
      await node.stop();
    }
  });

  it("followers acknowledge entries only after their fsync: with both followers' gates shut a put waits", async () => {
    const gates = new Map<string, Gate>();
    const c = await InProcessCluster.start({
      nodes: 3,
      wrapPorts: (id, ports) => {
        const g = new Gate();
        g.release();
        gates.set(id, g);
        return g.wrap(ports);
      },
    });
    try {
      const leader = await c.leader();
      const followers = [...c.nodes.keys()].filter((id) => id !== leader);
      assert.equal((await c.request(leader, "PUT", "/v1/kv/warm", "x")).status, 200);
      for (const id of followers) gates.get(id)!.open = false;
      const pending = c.request(leader, "PUT", "/v1/kv/k", "v1");
      assert.equal(await pendingAfter(pending, 700), "pending", "a quorum acknowledged the put though no follower's fsync had resolved");
      gates.get(followers[0])!.release();
      const res = await pending;
      assert.equal(res.status, 200, await res.clone().text());
      gates.get(followers[1])!.release();
    } finally {
      await c.close();
    }
  });
});
