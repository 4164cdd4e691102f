/**
 * The pure rules behind H1's membership and readiness truths: when a peer outage is logged
 * (src/server/peer-reachability.ts), what `/readyz` answers (src/server/readiness.ts), and when another
 * member's view proves this node was removed (src/server/removal-check.ts).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { PeerReachability } from "../../src/server/peer-reachability.ts";
import { type ReadinessFacts, readinessOf } from "../../src/server/readiness.ts";
import { removedByPeerView } from "../../src/server/removal-check.ts";
import type { PeerStatus } from "../../src/server/transport.ts";

function peer(outbound: PeerStatus["outbound"], lastError = ""): PeerStatus {
  return { state: "failed", lastHeardMs: 0, url: "http://127.0.0.1:9", outbound, queuedBatches: 0, sentBatches: 0, droppedBatches: 0, receivedBatches: 0, connects: 0, lastError };
}

describe("PeerReachability", () => {
  it("warns once after the grace period, stays quiet through retries, and once when the peer is back", () => {
    const r = new PeerReachability(1000);
    assert.deepEqual(r.observe(0, { n2: peer("connecting") }), []);
    assert.deepEqual(r.observe(500, { n2: peer("backoff", "connect ECONNREFUSED") }), []);
    const down = r.observe(1000, { n2: peer("backoff", "connect ECONNREFUSED") });
    assert.equal(down.length, 1);
    assert.match(down[0]!, /^peer n2 \(http:\/\/127\.0\.0\.1:9\) is unreachable: connect ECONNREFUSED/);
    assert.equal(r.downForMs("n2", 1500), 1500);
    for (let t = 1050; t < 5000; t += 50) assert.deepEqual(r.observe(t, { n2: peer(t % 200 === 0 ? "connecting" : "backoff", "x") }), []);
    const up = r.observe(5000, { n2: peer("open") });
    assert.deepEqual(up, ["peer n2 (http://127.0.0.1:9) is reachable again after 5000 ms"]);
    assert.equal(r.downForMs("n2", 5000), 0);
    assert.deepEqual(r.observe(5050, { n2: peer("open") }), []);
  });

  it("a short outage is not logged at all, nor its end", () => {
    const r = new PeerReachability(1000);
    assert.deepEqual([...r.observe(0, { n2: peer("backoff") }), ...r.observe(900, { n2: peer("backoff") }), ...r.observe(950, { n2: peer("open") })], []);
  });
});

const READY: ReadinessFacts = {
  id: "n3", isLeader: false, leaderId: "n1", commitIndex: 10, appliedIndex: 10, leaderCommitIndex: 10,
  fatal: false, removed: false, sinceLeaderHeardMs: 100, leaderStreamDownMs: 0, electionTimeoutMs: 600, lagEntriesMax: 1000,
};

describe("readinessOf", () => {
  it("a follower in touch with its leader and caught up is ready", () => {
    assert.equal(readinessOf(READY).ok, true);
    assert.equal(readinessOf({ ...READY, appliedIndex: 9 }).ok, true, "a lag within the bound is ready");
  });

  it("names each not-ready reason with its stable code, first match wins", () => {
    const reason = (f: Partial<ReadinessFacts>) => readinessOf({ ...READY, ...f }).reason ?? "ok";
    assert.equal(reason({ fatal: true, removed: true }), "fatal");
    assert.equal(reason({ removed: true, leaderId: "" }), "not_member");
    assert.equal(reason({ notYetMember: true, leaderId: "" }), "not_member", "waiting to be added, not no_leader");
    assert.match(String(readinessOf({ ...READY, notYetMember: true }).details?.message), /not in the cluster's configuration yet/);
    assert.equal(reason({ leaderId: "" }), "no_leader");
    assert.equal(reason({ sinceLeaderHeardMs: 601 }), "leader_silent");
    assert.equal(reason({ sinceLeaderHeardMs: null }), "leader_silent");
    assert.equal(reason({ leaderStreamDownMs: 601 }), "leader_unreachable");
    assert.equal(reason({ leaderStreamDownMs: 600 }), "ok");
    assert.equal(reason({ leaderCommitIndex: 1011 }), "catching_up", "the leader's announced commit index counts");
    assert.equal(reason({ leaderCommitIndex: 1010 }), "ok");
    assert.equal(reason({ commitIndex: 2000, leaderCommitIndex: 0 }), "catching_up");
    assert.equal(reason({ isLeader: true, leaderId: "n3", sinceLeaderHeardMs: null, leaderStreamDownMs: 9999 }), "ok", "a leader hears itself");
  });
});

describe("removedByPeerView", () => {
  const view = { leaderId: "n1", term: 4, appliedIndex: 20, members: [{ id: "n1" }, { id: "n2" }] };
  it("a view with a leader, applied at least as far as us and without us proves removal", () => {
    const v = removedByPeerView("n3", 20, view);
    assert.equal(v?.term, 4);
    assert.match(v?.why ?? "", /leader n1, term 4, applied index 20, members n1, n2/);
  });
  it("anything less proves nothing", () => {
    assert.equal(removedByPeerView("n2", 20, view), undefined, "listed");
    assert.equal(removedByPeerView("n3", 21, view), undefined, "the peer is behind us");
    assert.equal(removedByPeerView("n3", 5, { ...view, leaderId: "" }), undefined, "no leader");
    assert.equal(removedByPeerView("n3", 5, { ...view, members: [] }), undefined, "no members");
    assert.equal(removedByPeerView("n3", 5, { error: { code: "unavailable" } }), undefined);
    assert.equal(removedByPeerView("n3", 5, null), undefined);
    assert.equal(removedByPeerView("n3", 5, { ...view, term: undefined }), undefined, "no term");
    assert.equal(removedByPeerView("n3", 5, { ...view, members: [{ name: "n1" }] }), undefined);
  });
});
