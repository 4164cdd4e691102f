/**
 * The removed state's transitions (src/server/removal-check.ts): a node enters it when it applies its own
 * removal or a member's view proves it, and leaves it only when it applies a configuration listing it at an
 * index past the removal; old configurations (replays, AppendEntries queued before the removal) and leader
 * contact change nothing, so it cannot flip back and forth.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { type RemovalState, afterConfigApplied, afterRemovalVerdict, isMemberOf, removedByPeerView } from "../../src/server/removal-check.ts";

const member: RemovalState = { removed: false };

describe("removal state: applied configurations", () => {
  it("a member that applies a configuration without itself is removed as of that index", () => {
    assert.deepEqual(afterConfigApplied(member, { wasMember: true, isMember: false, appliedIndex: 40 }), {
      state: { removed: true, atIndex: 40 },
      change: "removed",
    });
  });
  it("a learner catching up from a snapshot older than its own addition is not removed", () => {
    assert.deepEqual(afterConfigApplied(member, { wasMember: false, isMember: false, appliedIndex: 30 }), { state: member, change: undefined });
  });
  it("a removed node that applies a configuration listing it past its removal is a member again", () => {
    const removed: RemovalState = { removed: true, atIndex: 40 };
    assert.deepEqual(afterConfigApplied(removed, { wasMember: false, isMember: true, appliedIndex: 45 }), { state: member, change: "member_again" });
  });
  it("an old configuration listing it (AppendEntries queued before the removal) changes nothing", () => {
    const byView: RemovalState = { removed: true, atIndex: 52 };
    for (const appliedIndex of [10, 51, 52]) {
      assert.deepEqual(afterConfigApplied(byView, { wasMember: true, isMember: true, appliedIndex }), { state: byView, change: undefined }, `index ${appliedIndex}`);
    }
  });
  it("a later removal moves the removal index, and is not logged twice", () => {
    const removed: RemovalState = { removed: true, atIndex: 40 };
    assert.deepEqual(afterConfigApplied(removed, { wasMember: false, isMember: false, appliedIndex: 47 }), { state: { removed: true, atIndex: 47 }, change: undefined });
  });
});

describe("removal state: a member's view", () => {
  const view = { leaderId: "n1", term: 3, appliedIndex: 52, members: [{ id: "n1" }, { id: "n2" }] };
  it("a verdict removes as of the view's applied index, once", () => {
    const verdict = removedByPeerView("n3", 50, view)!;
    assert.deepEqual([verdict.appliedIndex, verdict.term], [52, 3]);
    const first = afterRemovalVerdict(member, verdict);
    assert.deepEqual(first, { state: { removed: true, atIndex: 52 }, change: "removed" });
    assert.deepEqual(afterRemovalVerdict(first.state, verdict), { state: first.state, change: undefined }, "logged once");
  });
  it("re-added in the view's term or a later one: the old removal replayed keeps it removed, the re-add ends it, once", () => {
    const changes: string[] = [];
    let s: RemovalState = member;
    let wasMember = true;
    const apply = (isMember: boolean, appliedIndex: number) => {
      const next = afterConfigApplied(s, { wasMember, isMember, appliedIndex });
      s = next.state;
      wasMember = isMember;
      if (next.change) changes.push(`${next.change}@${appliedIndex}`);
    };
    const v = afterRemovalVerdict(s, removedByPeerView("n3", 50, view)!);
    s = v.state;
    changes.push(`${v.change}@view`);
    apply(true, 51); // a configuration from before the removal, delivered late
    apply(false, 52); // its own removal
    apply(true, 60); // the re-adding configuration
    apply(true, 61); // the promotion
    assert.deepEqual(changes, ["removed@view", "member_again@60"]);
    assert.deepEqual(s, member);
  });
  it("isMemberOf: voters, outgoing voters (joint consensus) and learners are members", () => {
    const cs = { voters: ["n1"], votersOutgoing: ["n2"], learners: ["n3"] };
    assert.deepEqual(["n1", "n2", "n3", "n4"].map((id) => isMemberOf(cs, id)), [true, true, true, false]);
  });
});
