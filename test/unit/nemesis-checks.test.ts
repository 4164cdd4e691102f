/**
 * The nemesis harness's pure parts: the per-key linearizability report (test/nemesis/checks.ts) never
 * passes a key whose search gave up, and names every illegal key; the workload's key windows
 * (test/nemesis/workload.ts) give each window its own register keys.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { checkLinearizable } from "../nemesis/checks.ts";
import { type HistoryRecord, registerKey } from "../nemesis/workload.ts";

let t = 0;
/** A completed operation record at increasing times (sequential unless `call` is given). */
function op(client: number, input: HistoryRecord["input"], output: HistoryRecord["output"], call = ++t, ret = ++t): HistoryRecord {
  return { client, input, call, ret, outcome: "ok", output, node: "n1", detail: "" };
}

describe("nemesis checker: one key at a time", () => {
  it("a history linearizable on every key is ok, with one partition per key", () => {
    const h = [
      op(0, { kind: "put", key: "a", value: "1" }, {}),
      op(1, { kind: "get", key: "a" }, { value: "1" }),
      op(0, { kind: "put", key: "b", value: "2" }, {}),
      op(1, { kind: "get", key: "b" }, { value: "2" }),
    ];
    const r = checkLinearizable(h);
    assert.equal(r.verdict, "ok", r.message);
    assert.equal(r.keys, 2);
    assert.equal(r.largestKey, 2);
  });

  it("names every illegal key and reports the first one's operations", () => {
    const h = [
      op(0, { kind: "put", key: "a", value: "1" }, {}),
      op(1, { kind: "get", key: "a" }, { value: null }), // after the put finished: stale
      op(0, { kind: "put", key: "b", value: "2" }, {}),
      op(1, { kind: "get", key: "b" }, { value: "2" }),
      op(0, { kind: "put", key: "c", value: "3" }, {}),
      op(1, { kind: "get", key: "c" }, { value: "x" }), // never written
    ];
    const r = checkLinearizable(h);
    assert.equal(r.verdict, "illegal");
    assert.deepEqual(r.illegalKeys, ["a", "c"]);
    assert.match(r.message, /^key a: not linearizable/);
    assert.match(r.message, /2 keys not linearizable: a, c/);
  });

  it("a key whose search runs out of its step budget makes the verdict unknown, never ok", () => {
    const h: HistoryRecord[] = [];
    for (let i = 0; i < 6; i++) h.push(op(i, { kind: "put", key: "big", value: `v${i}` }, {}));
    h.push(op(0, { kind: "put", key: "small", value: "s" }, {}));
    const r = checkLinearizable(h, 3);
    assert.equal(r.verdict, "unknown");
    assert.deepEqual(r.gaveUpKeys, [{ key: "big", operations: 6 }]);
    assert.match(r.message, /gave up after 3 steps on 1 of 2 keys: big \(6 operations\)/);
    // The same history with an ample budget passes: the budget, not the history, made it unknown.
    assert.equal(checkLinearizable(h).verdict, "ok");
  });

  it("an unknown-outcome write stays open only on its own key", () => {
    const h: HistoryRecord[] = [
      { client: 0, input: { kind: "put", key: "a", value: "late" }, call: ++t, outcome: "unknown", node: "n1", detail: "timeout" },
      op(1, { kind: "get", key: "b" }, { value: "late" }), // another key cannot see it
    ];
    assert.equal(checkLinearizable(h).verdict, "illegal");
    h[1] = op(1, { kind: "get", key: "a" }, { value: "late" });
    assert.equal(checkLinearizable(h).verdict, "ok");
  });
});

describe("nemesis workload: key windows", () => {
  it("each window has its own register keys", () => {
    assert.equal(registerKey(0, 3), "r/0/3");
    assert.notEqual(registerKey(1, 3), registerKey(2, 3));
  });
});
