/**
 * The nemesis harness's pure parts: the per-key linearizability report (test/nemesis/checks.ts) never
 * passes a key whose search gave up, and names every illegal key; the workload's key windows
 * (test/nemesis/workload.ts) give each window its own register keys; unavailability is attributed to the
 * fault active when a gap began, with a count, mean and max per fault kind (issue #5's per-fault figures).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { checkLinearizable, formatByFault, unavailability, divergedReplicas } from "../nemesis/checks.ts";
import type { FaultEvent } from "../nemesis/faults.ts";
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

/** A successful operation that returned at `ret` ms (only `ret` and the outcome matter to unavailability). */
function okAt(ret: number): HistoryRecord {
  return { client: 0, input: { kind: "get", key: "a" }, call: ret - 1, ret, outcome: "ok", output: { value: null }, node: "n1", detail: "" };
}

describe("nemesis unavailability: per fault", () => {
  // Run clock 0..20 000 ms. Successes every 500 ms except three gaps:
  //   2 000 -> 5 000 (3 s) during kill-leader #1 (starts 2 100)
  //   8 000 -> 9 500 (1.5 s) during pause (starts 8 200)
  //   14 000 -> 15 200 (1.2 s) during kill-leader #3 (starts 14 500), not during kill-leader #2 (11 000-12 000, no gap)
  const gaps: Array<[number, number]> = [[2000, 5000], [8000, 9500], [14000, 15200]];
  const history: HistoryRecord[] = [];
  for (let t = 0; t <= 20_000; t += 500) if (!gaps.some(([a, b]) => t > a && t < b)) history.push(okAt(t));
  history.push(okAt(9500), okAt(15200));
  const fault = (kind: FaultEvent["kind"], start: number, end: number): FaultEvent => ({ kind, start, end, detail: "" });
  const faults = [fault("kill-leader", 2100, 4000), fault("pause", 8200, 9000), fault("kill-leader", 11_000, 12_000), fault("kill-leader", 14_500, 15_000)];

  it("counts every fault of a kind, and gives the mean (zero-gap faults included) and max per fault", () => {
    const u = unavailability(history, faults, 0, 20_000);
    assert.equal(u.totalSec, 5.7);
    assert.deepEqual(u.byKind, { "kill-leader": 4.2, pause: 1.5 });
    assert.deepEqual(u.byFault, {
      "kill-leader": { faults: 3, totalSec: 4.2, meanSec: 1.4, maxSec: 3 },
      pause: { faults: 1, totalSec: 1.5, meanSec: 1.5, maxSec: 1.5 },
    });
    assert.equal(formatByFault(u.byFault), "kill-leader 3 faults, mean 1.4 s, max 3 s; pause 1 fault, mean 1.5 s, max 1.5 s");
  });

  it("a gap with no fault active goes to byKind none and to no fault", () => {
    const u = unavailability(history, [fault("split", 8200, 9000)], 0, 20_000);
    assert.deepEqual(u.byKind, { none: 4.2, split: 1.5 });
    assert.deepEqual(u.byFault, { split: { faults: 1, totalSec: 1.5, meanSec: 1.5, maxSec: 1.5 } });
  });
});

describe("nemesis checks: diverged replicas", () => {
  it("reports two members at one applied index with different revisions, and nothing else", () => {
    assert.equal(
      divergedReplicas([{ id: "n1", revision: 1762, appliedIndex: 2201 }, { id: "n2", revision: 1763, appliedIndex: 2201 }, { id: "n3", revision: 1443, appliedIndex: 1862 }]),
      "replicas diverged: n1 and n2 both applied index 2201 but are at revisions 1762 and 1763",
    );
    // Behind is not diverged; an unknown view is skipped.
    assert.equal(divergedReplicas([{ id: "n1", revision: 10, appliedIndex: 20 }, { id: "n2", revision: 9, appliedIndex: 18 }, undefined]), undefined);
    assert.equal(divergedReplicas([{ id: "n1", revision: 10, appliedIndex: 20 }, { id: "n2", revision: 10, appliedIndex: 20 }]), undefined);
  });
});

