/**
 * scripts/test-lanes.ts: how `npm test` splits a runtime's files into lanes and the simulator's seeds into
 * shards. The cluster files must share lane 1 (two real clusters at once on 2 cores would make the election
 * and recovery bounds flaky), nothing may be lost or run twice, and the seed shards must cover the range.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { assignLanes, isClusterFile, seedShards, splitSolo } from "../../scripts/test-lanes.ts";

const files = [
  "test/integration/cluster.test.ts",
  "test/integration/crash.test.ts",
  "test/integration/serve.test.ts",
  "test/nemesis/nemesis-short.test.ts",
  "test/nemesis/scenarios.test.ts",
  "test/unit/a.test.ts",
  "test/unit/b.test.ts",
  "test/unit/c.test.ts",
];
const seconds = { "test/integration/cluster.test.ts": 60, "test/integration/crash.test.ts": 50, "test/nemesis/nemesis-short.test.ts": 100, "test/nemesis/scenarios.test.ts": 90, "test/integration/serve.test.ts": 20 };

describe("test lanes", () => {
  it("every file lands in exactly one lane, each lane in the original order", () => {
    const lanes = assignLanes(files, 2, seconds);
    assert.equal(lanes.length, 2);
    assert.deepEqual(lanes.flat().sort(), [...files].sort());
    for (const l of lanes) assert.deepEqual(l, files.filter((f) => l.includes(f)));
  });

  it("the cluster files all share lane 1 and the other lane gets the rest, slowest first to the least-loaded lane", () => {
    const lanes = assignLanes(files, 2, seconds);
    assert.deepEqual(lanes[0], ["test/integration/cluster.test.ts", "test/nemesis/nemesis-short.test.ts", "test/nemesis/scenarios.test.ts"]);
    // lane 1 holds 250 s of cluster files, so crash (50), serve (20) and the three 3 s unit files go to lane 2
    assert.deepEqual(lanes[1], ["test/integration/crash.test.ts", "test/integration/serve.test.ts", "test/unit/a.test.ts", "test/unit/b.test.ts", "test/unit/c.test.ts"]);
  });

  it("balances by weight when no cluster file is present", () => {
    const lanes = assignLanes(["x/a.test.ts", "x/b.test.ts", "x/c.test.ts", "x/d.test.ts"], 2, { "x/a.test.ts": 10, "x/b.test.ts": 6, "x/c.test.ts": 5, "x/d.test.ts": 1 });
    assert.deepEqual(lanes, [["x/a.test.ts", "x/d.test.ts"], ["x/b.test.ts", "x/c.test.ts"]]);
  });

  it("one job, or one file, is a single lane; no files is no lane; empty lanes are dropped", () => {
    assert.deepEqual(assignLanes(files, 1, seconds), [files]);
    assert.deepEqual(assignLanes(["test/unit/a.test.ts"], 4, seconds), [["test/unit/a.test.ts"]]);
    assert.deepEqual(assignLanes([], 2, seconds), []);
    assert.equal(assignLanes(["test/unit/a.test.ts", "test/unit/b.test.ts"], 4, seconds).length, 2);
  });

  it("cluster files are the nemesis folder, the named integration files and files that start a real cluster", () => {
    assert.equal(isClusterFile("test/nemesis/stale-read.test.ts"), true);
    assert.equal(isClusterFile("test/integration/cluster.test.ts"), true);
    assert.equal(isClusterFile("test/integration/cluster-view.test.ts"), false);
    assert.equal(isClusterFile("test/unit/cluster.test.ts"), false);
    // (spelled in two pieces so this file's own source does not look like a cluster file)
    assert.equal(isClusterFile("test/integration/new.test.ts", "before(async () => { c = await TestCluster" + ".start({ runtime }); });"), true);
    assert.equal(isClusterFile("test/integration/new.test.ts", "const r = await runNemesis" + "({ timeSec: 5 });"), true);
    assert.equal(isClusterFile("test/integration/new.test.ts", "import { freePorts } from '../helpers/cluster.ts';"), false);
  });

  it("a file whose source starts a real cluster goes to lane 1 with the listed ones", () => {
    const src: Record<string, string> = { "test/unit/b.test.ts": "const c = await NemesisCluster" + ".create({ nodes: 3 });" };
    const lanes = assignLanes(files, 2, seconds, (f) => src[f]);
    assert.ok(lanes[0].includes("test/unit/b.test.ts"), JSON.stringify(lanes));
    assert.ok(!lanes[1].includes("test/unit/b.test.ts"));
  });

  it("seed shards cover the range exactly, in order, near-equal in size", () => {
    assert.deepEqual(seedShards("1..300", 2), ["1..150", "151..300"]);
    assert.deepEqual(seedShards("1..10", 3), ["1..4", "5..7", "8..10"]);
    assert.deepEqual(seedShards("5..6", 4), ["5..5", "6..6"]);
    assert.deepEqual(seedShards("1..300", 1), ["1..300"]);
    assert.throws(() => seedShards("9..1", 2), /A <= B/);
    assert.throws(() => seedShards("1-300", 2), /A\.\.B/);
  });
});

describe("test lanes: solo files", () => {
  it("splitSolo takes the nemesis files out of the lanes, in order, and leaves everything else", () => {
    const files = ["test/unit/a.test.ts", "test/nemesis/x.test.ts", "test/integration/cluster.test.ts", "test/nemesis/y.test.ts"];
    assert.deepEqual(splitSolo(files), {
      shared: ["test/unit/a.test.ts", "test/integration/cluster.test.ts"],
      solo: ["test/nemesis/x.test.ts", "test/nemesis/y.test.ts"],
    });
    assert.deepEqual(splitSolo(["test/unit/a.test.ts"]), { shared: ["test/unit/a.test.ts"], solo: [] });
  });
});

