/**
 * The Lessor (leader-side lease clock, time passed in): scenarios C06 (leases survive a leaderless gap)
 * and C09 (remaining TTL stays within [0, TTL] whatever the clock does).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Lessor } from "../../src/kv/lessor.ts";
import { KvError } from "../../src/kv/types.ts";

describe("Lessor", () => {
  it("only the primary reports expiry, at the deadline, and does not re-report within retryMs", () => {
    const l = new Lessor({ retryMs: 1000 });
    l.grant(1, 5, 0);
    assert.deepEqual(l.expired(10_000), [], "a follower never expires leases");
    l.promote(0, 0);
    assert.deepEqual(l.expired(4_999), []);
    assert.deepEqual(l.expired(5_000), [1]);
    assert.deepEqual(l.expired(5_500), [], "proposal in flight");
    assert.deepEqual(l.expired(6_000), [1], "lost proposal retried");
    l.revoke(1);
    assert.deepEqual(l.expired(20_000), []);
  });

  it("keepAlive resets the deadline to now + TTL, on the primary only; unknown ids are lease_not_found", () => {
    const l = new Lessor();
    l.grant(1, 5, 0);
    assert.throws(() => l.keepAlive(1, 1000), (e: KvError) => e.code === "bad_request");
    l.promote(0, 0);
    assert.equal(l.keepAlive(1, 4_000), 5);
    assert.deepEqual(l.expired(8_999), []);
    assert.deepEqual(l.expired(9_000), [1]);
    assert.throws(() => l.keepAlive(2, 0), (e: KvError) => e.code === "lease_not_found");
  });

  it("C06: a new leader gives every lease TTL + extend from its promotion, even if its old deadline passed", () => {
    const l = new Lessor();
    l.grant(1, 5, 0); // kept alive by its client until the leader died
    l.grant(2, 5, 0);
    l.promote(0, 0);
    l.keepAlive(1, 2_500);
    l.demote(); // leader lost; 3 s without quorum
    l.promote(10_500, 600); // new leader elected at t = 10.5 s, election timeout 600 ms
    assert.deepEqual(l.expired(16_099), [], "nothing expires before TTL + election timeout after promotion");
    assert.deepEqual(l.expired(16_100), [1, 2]);
  });

  it("C09: remaining TTL is clamped to [0, TTL] when the clock jumps either way", () => {
    const l = new Lessor();
    l.grant(1, 60, 0);
    l.promote(0, 1_000);
    assert.equal(l.remainingMs(1, 0), 60_000, "extension never shows a remaining time above the TTL");
    assert.equal(l.remainingMs(1, 10_000), 51_000);
    assert.equal(l.remainingMs(1, -3_600_000), 60_000, "backward jump");
    assert.equal(l.remainingMs(1, 3_600_000), 0, "forward jump");
    assert.throws(() => l.remainingMs(9, 0), (e: KvError) => e.code === "lease_not_found");
  });

  it("restore replaces the tracked leases; maxExpirePerCall bounds one report", () => {
    const l = new Lessor({ maxExpirePerCall: 2 });
    l.grant(9, 1, 0);
    l.restore([{ id: 3, ttlSeconds: 1 }, { id: 1, ttlSeconds: 1 }, { id: 2, ttlSeconds: 1 }], 0);
    assert.equal(l.size(), 3);
    l.promote(0, 0);
    assert.deepEqual(l.expired(1_000), [1, 2]);
    assert.deepEqual(l.expired(1_000), [3]);
  });
});
