/**
 * C03 (stale read by a deposed leader) on real processes, and the proof that the nemesis checker can fail:
 * the leader is isolated by the link proxies, the majority elects a new leader and acknowledges a newer
 * value, then the old leader is asked for a linearizable read. A correct node must not answer with the old
 * value (ReadIndex needs a quorum: Raft thesis §6.4); a node started with EDGEKV_UNSAFE_BUG=local-reads
 * serves its local state, and the shared linearizability checker must call that history illegal.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NemesisCluster, clusterView } from "./cluster.ts";
import { checkLinearizable } from "./checks.ts";
import { Recorder, testRuntime, until } from "./scenario.ts";

const maybeIt = it;

const clusters: NemesisCluster[] = [];
after(async () => {
  await Promise.all(clusters.map((c) => c.destroy()));
});

/** Runs the isolated-leader read; returns the read's record and the checker's verdict. */
async function isolatedLeaderRead(env: Record<string, string>) {
  const c = await NemesisCluster.create({ nodes: 3, runtime: testRuntime(), dir: mkdtempSync(join(tmpdir(), "edgekv-c03-")), env });
  clusters.push(c);
  try {
    await c.waitHealthy(90_000);
    const old = await c.waitLeader(60_000);
    const others = c.members.map((m) => m.id).filter((x) => x !== old);
    const rec = new Recorder();
    const first = await rec.put(c.url(old), "k", "v1");
    assert.equal(first.outcome, "ok", `put v1 on the leader: ${first.detail}`);
    // The old leader applied v1 too (it is in its local state before the partition).
    await until("v1 applied on the old leader", async () => (await fetch(`${c.url(old)}/v1/kv/k?consistency=stale`).then((r) => r.text()).catch(() => "")) === "v1", 10_000);
    c.partition([old], others);
    const fresh = await until(
      "a new leader in the majority",
      async () => {
        for (const id of others) {
          const v = await clusterView(c.url(id));
          if (v && v.leaderId && v.leaderId !== old) return v.leaderId;
        }
        return undefined;
      },
      20_000,
    );
    const second = await until("an acknowledged put of v2 in the majority", async () => {
      const r = await rec.put(c.url(fresh), "k", "v2", 3000);
      return r.outcome === "ok" ? r : undefined;
    }, 20_000, 200);
    assert.equal(second.outcome, "ok");
    const read = await rec.get(c.url(old), "k", 3000);
    return { read, verdict: checkLinearizable(rec.history).verdict };
  } finally {
    await c.destroy();
  }
}

describe("C03: linearizable read on a deposed (isolated) leader", () => {
  maybeIt("never returns the overwritten value; the history stays linearizable", async () => {
    const { read, verdict } = await isolatedLeaderRead({});
    assert.notEqual(read.output?.value, "v1", `the isolated old leader served a stale read: ${read.detail}`);
    assert.equal(verdict, "ok");
  });

  maybeIt("with EDGEKV_UNSAFE_BUG=local-reads the old leader answers v1 and the checker reports the history illegal", async () => {
    const { read, verdict } = await isolatedLeaderRead({ EDGEKV_UNSAFE_BUG: "local-reads" });
    assert.equal(read.outcome, "ok", read.detail);
    assert.equal(read.output?.value, "v1");
    assert.equal(verdict, "illegal");
  });
});
