/**
 * src/server/role-log.ts: the lines a node logs when its Raft role or known leader changes, and when it
 * counts a leader change (`edgekv_leader_changes_seen_total`).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { describeRoleChange, type RoleSeen } from "../../src/server/role-log.ts";

const f = (leaderId = ""): RoleSeen => ({ role: "follower", leaderId });

describe("role change lines", () => {
  it("an election seen from one node: pre-vote, election, leader, each a line; a new leader counts once", () => {
    const a = describeRoleChange(f("n1"), { role: "preCandidate", leaderId: "" }, 3, "n2", "n1");
    assert.deepEqual(a, { message: "no leader heard within the election timeout: starting a pre-vote (term 3)", newLeader: false });
    const b = describeRoleChange({ role: "preCandidate", leaderId: "" }, { role: "candidate", leaderId: "" }, 4, "n2", "n1");
    assert.deepEqual(b, { message: "starting an election in term 4", newLeader: false });
    const c = describeRoleChange({ role: "candidate", leaderId: "" }, { role: "leader", leaderId: "n2" }, 4, "n2", "n1");
    assert.deepEqual(c, { message: "became leader in term 4", newLeader: true });
  });

  it("a leader stepping down names the new leader when known", () => {
    assert.deepEqual(describeRoleChange({ role: "leader", leaderId: "n2" }, f("n3"), 5, "n2", "n2"), { message: "stepped down in term 5; the leader is now n3", newLeader: true });
    assert.deepEqual(describeRoleChange({ role: "leader", leaderId: "n2" }, f(), 5, "n2", "n2"), { message: "stepped down in term 5", newLeader: false });
    assert.deepEqual(describeRoleChange({ role: "leader", leaderId: "n2" }, { role: "follower", leaderId: "", stepDownReason: "removed from the configuration" }, 5, "n2", "n2"), {
      message: "stepped down in term 5 (removed from the configuration)",
      newLeader: false,
    });
  });

  it("a follower: a new leader, a lost one, and the same one found again (not counted twice)", () => {
    assert.deepEqual(describeRoleChange(f("n1"), f("n3"), 6, "n2", "n1"), { message: "following leader n3 in term 6", newLeader: true });
    assert.deepEqual(describeRoleChange(f("n3"), f(), 7, "n2", "n3"), { message: "lost leader n3 (now in term 7, no leader known)", newLeader: false });
    assert.deepEqual(describeRoleChange(f(), f("n3"), 7, "n2", "n3"), { message: "following leader n3 in term 7", newLeader: false });
    // A candidate that loses and follows the winner.
    assert.deepEqual(describeRoleChange({ role: "candidate", leaderId: "" }, f("n1"), 8, "n2", "n3"), { message: "following leader n1 in term 8", newLeader: true });
  });

  it("nothing changed: no line, no count", () => {
    assert.deepEqual(describeRoleChange(f("n1"), f("n1"), 2, "n2", "n1"), { message: undefined, newLeader: false });
  });
});
