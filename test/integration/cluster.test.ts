/**
 * Real-process cluster tests (test/helpers/cluster.ts): three node.ts processes on the runtime running the
 * test (EDGEKV_TEST_RUNTIME, set by scripts/test-all.ts), default timings. Put/get across nodes,
 * conditional writes, bad inputs answered 4xx with a code while the node keeps serving, kill -9 of the
 * leader (new leader within 2 s: election timeout 300-600 ms plus PreVote round, DESIGN.md defaults; every
 * acknowledged write still readable), and the killed node's restart and catch-up. One mixed-runtime
 * cluster (bun + deno + node) runs only under the Node run, to keep CI time sane.
 */
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { currentRuntime } from "../../runtime-adapters/runtime.ts";
import { type NodeRuntime, TestCluster, sleep, withClusterLogs } from "../helpers/cluster.ts";

const runtime = (process.env.EDGEKV_TEST_RUNTIME ?? currentRuntime()) as NodeRuntime;
const enc = new TextEncoder();
/**
 * Known bug, reported to the coordinator: on Deno, runtime-adapters/shared/peer-fetch-server.ts reads
 * `req.body` in the catch of the inbound message stream after the request closed; Deno's getter throws
 * "TypeError: Request closed" there, the rejection escapes, and every Deno follower dies when the leader is
 * killed. Remove this skip once that line is guarded.
 */

/** The JSON error body's code, or a description of what came back instead. */
async function errorCode(res: Response): Promise<string> {
  const text = await res.text();
  try {
    return (JSON.parse(text) as { error: { code: string } }).error.code;
  } catch {
    return `<not an error body: ${text.slice(0, 200)}>`;
  }
}

describe(`a 3-node cluster of ${runtime} processes`, () => {
  let c: TestCluster;
  let failed = false;
  /** Runs a test body; on failure appends every node's log to the error and keeps the temp dir. */
  const withLogs = (fn: () => Promise<void>) => withClusterLogs(() => c, () => (failed = true), fn);
  before(async () => {
    c = await TestCluster.start({ runtime });
  });
  after(async () => {
    if (failed && c) console.error(`cluster logs kept in ${c.dir}`);
    await c?.stop({ keepDir: failed });
  });

  const acknowledged = new Map<string, string>();

  it("a put through a follower is returned by a linearizable get through another node", () =>
    withLogs(async () => {
      const leader = await c.leader();
      const [f1, f2] = ["n1", "n2", "n3"].filter((id) => id !== leader);
      const put = await c.fetch(f1, "/v1/kv/greeting", { method: "PUT", body: "hello" });
      assert.equal(put.status, 200, await put.clone().text());
      const { revision } = (await put.json()) as { revision: number };
      assert.ok(revision >= 1);
      acknowledged.set("greeting", "hello");
      for (const id of [f2, leader]) {
        const get = await c.fetch(id, "/v1/kv/greeting?consistency=linearizable");
        assert.equal(get.status, 200);
        assert.equal(await get.text(), "hello");
        assert.equal(get.headers.get("etag"), `"${revision}"`);
      }
      // The SDK against one node each way.
      await c.client(f2).put("sdk/key", "sdk-value");
      acknowledged.set("sdk/key", "sdk-value");
      const got = await c.client(f1).get("sdk/key");
      assert.equal(got && new TextDecoder().decode(got.value), "sdk-value");
    }));

  it("a failed If-Match is 412 compare_failed and changes nothing; a matching one succeeds", () =>
    withLogs(async () => {
      const first = (await (await c.fetch("n1", "/v1/kv/cas", { method: "PUT", body: "v1" })).json()) as { revision: number };
      const stale = await c.fetch("n2", "/v1/kv/cas", { method: "PUT", body: "v2", headers: { "if-match": `"${first.revision + 1000}"` } });
      assert.equal(stale.status, 412);
      assert.equal(await errorCode(stale), "compare_failed");
      const exists = await c.fetch("n3", "/v1/kv/cas", { method: "PUT", body: "v3", headers: { "if-none-match": "*" } });
      assert.equal(exists.status, 412);
      assert.equal(await errorCode(exists), "compare_failed");
      assert.equal(await (await c.fetch("n3", "/v1/kv/cas")).text(), "v1");
      const ok = await c.fetch("n2", "/v1/kv/cas", { method: "PUT", body: "v4", headers: { "if-match": `"${first.revision}"` } });
      assert.equal(ok.status, 200, await ok.clone().text());
      assert.equal(await (await c.fetch("n1", "/v1/kv/cas")).text(), "v4");
      acknowledged.set("cas", "v4");
    }));

  it("bad inputs get 4xx with an error code and the node keeps serving", () =>
    withLogs(async () => {
      const cases: Array<[string, string, RequestInit, number, string]> = [
        ["malformed JSON txn", "/v1/txn", { method: "POST", body: "{not json", headers: { "content-type": "application/json" } }, 400, "bad_request"],
        ["txn of the wrong shape", "/v1/txn", { method: "POST", body: JSON.stringify({ compare: "x" }), headers: { "content-type": "application/json" } }, 400, "bad_request"],
        // A key over the limit is "too large" like a value (413), not malformed.
        ["key over maxKeyBytes", `/v1/kv/${"k".repeat(5000)}`, { method: "PUT", body: "v" }, 413, "payload_too_large"],
        ["empty key", "/v1/kv/", { method: "PUT", body: "v" }, 400, "bad_request"],
        ["range end before start", "/v1/kv?start=b&end=a", {}, 400, "bad_request"],
        ["value over maxValueBytes", "/v1/kv/big", { method: "PUT", body: new Uint8Array(1024 * 1024 + 1) }, 413, "payload_too_large"],
        ["unknown lease", "/v1/kv/leased?lease=987654321", { method: "PUT", body: "v" }, 404, "lease_not_found"],
        ["unknown consistency", "/v1/kv/greeting?consistency=sometimes", {}, 400, "bad_request"],
        ["lease id that is not a number", "/v1/leases/abc", {}, 400, "bad_request"],
      ];
      const got: string[] = [];
      const want: string[] = [];
      const bodies: string[] = [];
      for (const id of ["n1", "n2"]) {
        for (const [what, path, init, status, code] of cases) {
          // 503 no_leader is the documented transient answer while an election runs (a loaded machine can
          // trigger one); it is retried, bounded, so the check is about the bad input's own answer.
          let res = await c.fetch(id, path, init);
          for (let i = 0; i < 50 && res.status === 503 && (await errorCode(res.clone())) === "no_leader"; i++) {
            await new Promise((r) => setTimeout(r, 200));
            res = await c.fetch(id, path, init);
          }
          const body = await res.clone().text();
          got.push(`${id} ${what}: ${res.status} ${await errorCode(res)}`);
          want.push(`${id} ${what}: ${status} ${code}`);
          bodies.push(`${id} ${what}: ${body.slice(0, 300)}`);
        }
      }
      assert.deepEqual(got, want, `responses:\n${bodies.join("\n")}`);
      for (const id of ["n1", "n2", "n3"]) assert.equal((await c.fetch(id, "/healthz")).status, 200);
      const after = await c.fetch("n2", "/v1/kv/after-bad-inputs", { method: "PUT", body: enc.encode("still-ok") });
      assert.equal(after.status, 200);
      acknowledged.set("after-bad-inputs", "still-ok");
    }));

  let killed = "";
  it("kill -9 of the leader: a new leader within 2 s and every acknowledged write still readable", () =>
    withLogs(async () => {
      const client = c.client();
      for (let i = 0; i < 20; i++) {
        await client.put(`acked/${i}`, `value-${i}`);
        acknowledged.set(`acked/${i}`, `value-${i}`);
      }
      killed = await c.leader();
      const survivors = ["n1", "n2", "n3"].filter((id) => id !== killed);
      await c.kill(killed, "SIGKILL");
      const t0 = Date.now();
      const next = await c.waitForLeader({ among: survivors, not: killed, timeoutMs: 10_000 });
      const electionMs = Date.now() - t0;
      assert.notEqual(next, killed);
      assert.ok(electionMs <= 2000, `new leader ${next} after ${electionMs} ms`);
      for (const id of survivors) {
        for (const [key, value] of acknowledged) {
          const res = await c.fetch(id, `/v1/kv/${encodeURIComponent(key)}?consistency=linearizable`);
          assert.deepEqual([id, key, res.status, await res.text()], [id, key, 200, value]);
        }
      }
      await c.client(survivors).put("written/while-down", "yes");
      acknowledged.set("written/while-down", "yes");
    }));

  it("the killed node restarts and catches up", () =>
    withLogs(async () => {
      assert.ok(killed, "depends on the kill -9 test");
      await c.restart(killed);
      // A stale read is served from the node's own state: once it shows the write made while it was down,
      // the node has caught up through its own log. Bounded: 15 s.
      const deadline = Date.now() + 15_000;
      let last = "";
      while (Date.now() < deadline) {
        const res = await c.fetch(killed, "/v1/kv/written%2Fwhile-down?consistency=stale");
        last = `${res.status} ${await res.text()}`;
        if (last === "200 yes") break;
        await sleep(100);
      }
      assert.equal(last, "200 yes");
      for (const [key, value] of acknowledged) {
        const res = await c.fetch(killed, `/v1/kv/${encodeURIComponent(key)}?consistency=stale`);
        assert.deepEqual([key, res.status, await res.text()], [key, 200, value]);
      }
      const lin = await c.fetch(killed, "/v1/kv/greeting?consistency=linearizable");
      assert.equal(lin.status, 200);
      assert.equal(await lin.text(), "hello");
      const leader = await c.waitForLeader();
      assert.ok(["n1", "n2", "n3"].includes(leader));
    }));
});

describe("a mixed cluster: bun + deno + node", { skip: runtime !== "node" ? "runs in the Node run only" : false }, () => {
  let c: TestCluster | undefined;
  after(async () => {
    await c?.stop();
  });

  it("replicates a write made on each runtime to the other two", async () => {
    c = await TestCluster.start({ runtime: "mixed" });
    try {
      for (const [writer, readers] of [["n1", ["n2", "n3"]], ["n2", ["n3", "n1"]], ["n3", ["n1", "n2"]]] as const) {
        const put = await c.fetch(writer, `/v1/kv/mixed/${writer}`, { method: "PUT", body: `from-${writer}` });
        assert.equal(put.status, 200, await put.clone().text());
        for (const r of readers) {
          const get = await c.fetch(r, `/v1/kv/mixed/${writer}?consistency=linearizable`);
          assert.deepEqual([writer, r, get.status, await get.text()], [writer, r, 200, `from-${writer}`]);
        }
      }
    } catch (e) {
      if (e instanceof Error) e.message += `\n${c.logs()}`;
      throw e;
    }
  });

  it("the Deno node starts without the legacy-abort warning and drops a watch whose client left", async () => {
    assert.ok(c, "the cluster of the test above");
    const waiting = async (): Promise<number> => {
      const text = await (await c!.fetch("n2", "/metrics")).text();
      return Number(/^edgekv_watchers_waiting (\d+)$/m.exec(text)?.[1] ?? -1);
    };
    const client = new AbortController();
    const res = await c.fetch("n2", "/v1/watch?key=mixed/watched", { signal: client.signal });
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    await reader.read(); // the stream is open
    let before = -1;
    for (let i = 0; i < 100 && before < 1; i++) {
      before = await waiting();
      if (before < 1) await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(before, 1, "the open watch is parked on the Deno node");
    client.abort();
    let now = before;
    for (let i = 0; i < 100 && now !== 0; i++) {
      await new Promise((r) => setTimeout(r, 50));
      now = await waiting();
    }
    assert.equal(now, 0, "the watch was dropped after its client left");
    assert.doesNotMatch(c.logs(), /legacy behavior/);
  });
});
