import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { RaftNet, bytes, appliedData } from "../helpers/raft-net.ts";
describe("smoke", () => {
  it("elects and replicates", () => {
    const net = new RaftNet(["a", "b", "c"]);
    net.elect("a");
    assert.equal(net.node("a").status().role, "leader");
    net.node("a").propose(bytes("x"));
    net.stabilize();
    for (const id of ["a", "b", "c"]) assert.deepEqual(appliedData(net.get(id)), ["x"]);
    const one = new RaftNet(["s"]);
    one.elect("s");
    one.node("s").propose(bytes("y"));
    one.stabilize();
    assert.deepEqual(appliedData(one.get("s")), ["y"]);
    net.tickAll(30);
    assert.deepEqual(net.leaderIds(), ["a"]);
  });
});
