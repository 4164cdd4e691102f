/**
 * KV scenarios from docs/scenarios.md at the state-machine level (C05, C08, C20, C21), plus
 * leases, compaction, watch history paging, client sessions and size limits.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Harness, b, s } from "./kv-helpers.ts";
import { KvError, type LeaseExpireResult, type LeaseRevokeResult, type PutResult, type TxnResult } from "../../src/kv/types.ts";

const ALL = new Uint8Array([0]);

describe("kv scenarios", () => {
  it("C05: a watch from a compact revision that is a delete delivers the delete then the put, and below it is refused", async () => {
    const h = await Harness.open();
    for (const v of ["a", "b", "c"]) h.ok({ op: "put", key: b("k"), value: b(v) });
    h.ok({ op: "deleteRange", key: b("k") });
    const rd = h.sm.revision();
    h.ok({ op: "put", key: b("k"), value: b("d") });
    h.ok({ op: "compact", revision: rd });
    const page = h.sm.eventsSince(rd, b("k"), undefined, 100);
    assert.deepEqual(page.events.map((e) => [e.type, e.kv.modRevision]), [["delete", rd], ["put", rd + 1]]);
    assert.throws(
      () => h.sm.eventsSince(rd - 1, b("k"), undefined, 100),
      (e: KvError) => e.code === "compacted" && e.compactRevision === rd,
    );
    assert.equal(h.sm.range({ key: b("k"), revision: rd }).count, 0, "read at the compact revision sees the delete");
    h.close();
  });

  it("C08: a put with a revoked, never-issued or huge lease id is lease_not_found and changes nothing", async () => {
    const h = await Harness.open();
    h.ok({ op: "leaseGrant", id: 5, ttlSeconds: 30 });
    h.ok({ op: "leaseRevoke", id: 5 });
    for (const lease of [5, 12345, Number.MAX_SAFE_INTEGER]) {
      assert.equal(h.fail({ op: "put", key: b("k"), value: b("v"), lease }).code, "lease_not_found");
    }
    for (const lease of [-1, 1.5, 2 ** 64]) assert.equal(h.fail({ op: "put", key: b("k"), value: b("v"), lease }).code, "bad_request");
    assert.deepEqual([h.sm.range({ key: b("k") }).count, h.sm.revision()], [0, 0]);
    assert.equal(h.ok<PutResult>({ op: "put", key: b("k"), value: b("v"), lease: 0 }).revision, 1, "lease 0 = none");
    h.close();
  });

  it("C20: the revision survives compaction of trailing tombstones and a restart; the next put gets R + 1", async () => {
    const h = await Harness.open();
    for (let i = 1; i <= 5; i++) h.ok({ op: "put", key: b(`k${i}`), value: b("v") });
    for (const i of [3, 4, 5]) h.ok({ op: "deleteRange", key: b(`k${i}`) });
    const R = h.sm.revision();
    h.ok({ op: "compact", revision: R });
    h.close();
    const h2 = await Harness.open(h.driver.path);
    assert.equal(h2.sm.revision(), R);
    assert.equal(h2.ok<PutResult>({ op: "put", key: b("k6"), value: b("v") }).revision, R + 1);
    const page = h2.sm.eventsSince(R + 1, new Uint8Array(0), ALL, 10);
    assert.deepEqual(page.events.map((e) => s(e.kv.key)), ["k6"]);
    h2.close();
  });

  it("C21: open-ended and bounded delete + put inside it are both duplicate_key_in_txn, in either order", async () => {
    const h = await Harness.open();
    for (const k of ["a", "b", "c"]) h.ok({ op: "put", key: b(k), value: b(k) });
    const forms = [
      [{ op: "deleteRange" as const, key: b("a"), rangeEnd: ALL }, { op: "put" as const, key: b("b"), value: b("x") }],
      [{ op: "deleteRange" as const, key: b("a"), rangeEnd: b("c") }, { op: "put" as const, key: b("b"), value: b("x") }],
      [{ op: "put" as const, key: b("b"), value: b("x") }, { op: "deleteRange" as const, key: b("a"), rangeEnd: ALL }],
      [{ op: "put" as const, key: b("b"), value: b("x") }, { op: "put" as const, key: b("b"), value: b("y") }],
    ];
    for (const success of forms) assert.equal(h.fail({ op: "txn", compare: [], success, failure: [] }).code, "duplicate_key_in_txn");
    // A delete that does not cover the put, and overlapping deletes, are fine.
    h.ok({ op: "txn", compare: [], success: [{ op: "deleteRange", key: b("c"), rangeEnd: ALL }, { op: "put", key: b("b"), value: b("x") }], failure: [] });
    h.ok({ op: "txn", compare: [], success: [{ op: "deleteRange", key: b("a"), rangeEnd: ALL }, { op: "deleteRange", key: b("a") }], failure: [] });
    h.close();
  });

  it("C21: create-if-absent after a delete succeeds; a CAS on the version from before the delete fails", async () => {
    const h = await Harness.open();
    h.ok({ op: "put", key: b("k"), value: b("1") });
    const oldVersion = h.sm.range({ key: b("k") }).kvs[0].version;
    h.ok({ op: "deleteRange", key: b("k") });
    const created = h.ok<TxnResult>({
      op: "txn",
      compare: [{ key: b("k"), target: "createRevision", result: "=", value: 0 }],
      success: [{ op: "put", key: b("k"), value: b("2") }],
      failure: [],
    });
    assert.equal(created.succeeded, true);
    const stale = h.ok<TxnResult>({
      op: "txn",
      compare: [{ key: b("k"), target: "version", result: "=", value: oldVersion + 1 }],
      success: [{ op: "put", key: b("k"), value: b("3") }],
      failure: [],
    });
    assert.equal(stale.succeeded, false);
    assert.equal(s(h.sm.range({ key: b("k") }).kvs[0].value), "2");
    h.close();
  });
});

describe("kv leases", () => {
  it("grant, attach, timeToLive with keys, revoke deletes the keys in one revision with delete events", async () => {
    const h = await Harness.open();
    h.ok({ op: "leaseGrant", id: 7, ttlSeconds: 10 });
    assert.equal(h.fail({ op: "leaseGrant", id: 7, ttlSeconds: 10 }).code, "lease_exists");
    h.ok({ op: "put", key: b("x"), value: b("1"), lease: 7 });
    h.ok({ op: "put", key: b("y"), value: b("1"), lease: 7 });
    h.ok({ op: "put", key: b("z"), value: b("1"), lease: 7 });
    h.ok({ op: "put", key: b("z"), value: b("2") }); // re-put without lease detaches
    assert.deepEqual(h.sm.leaseInfo(7, true).keys!.map(s), ["x", "y"]);
    const r = h.apply({ op: "leaseRevoke", id: 7 });
    assert.deepEqual([(r.result as LeaseRevokeResult).deleted, (r.result as LeaseRevokeResult).revision], [2, 5]);
    assert.deepEqual(r.events.map((e) => [e.type, s(e.kv.key), e.kv.modRevision]), [["delete", "x", 5], ["delete", "y", 5]]);
    assert.throws(() => h.sm.leaseInfo(7), (e: KvError) => e.code === "lease_not_found");
    assert.equal(h.fail({ op: "leaseRevoke", id: 7 }).code, "lease_not_found");
    assert.deepEqual(h.sm.range({ key: b("z") }).kvs.map((kv) => s(kv.value)), ["2"]);
    h.close();
  });

  it("leaseExpire expires several leases in one revision and ignores ids already gone", async () => {
    const h = await Harness.open();
    h.ok({ op: "leaseGrant", id: 1, ttlSeconds: 5 });
    h.ok({ op: "leaseGrant", id: 2, ttlSeconds: 5 });
    h.ok({ op: "put", key: b("a"), value: b("1"), lease: 1 });
    h.ok({ op: "put", key: b("b"), value: b("1"), lease: 2 });
    const r = h.ok<LeaseExpireResult>({ op: "leaseExpire", ids: [2, 1, 99, 2] });
    assert.deepEqual([r.expired, r.deleted, r.revision], [[1, 2], 2, 3]);
    assert.deepEqual(h.sm.leases(), []);
    const again = h.ok<LeaseExpireResult>({ op: "leaseExpire", ids: [1] });
    assert.deepEqual([again.expired, again.revision], [[], 3]);
    h.close();
  });
});

describe("kv compaction and watch history", () => {
  it("compaction keeps reads at and after the compact revision exact, refuses older ones, and never lowers the revision", async () => {
    const h = await Harness.open();
    h.ok({ op: "put", key: b("a"), value: b("1") }); // 1
    h.ok({ op: "put", key: b("a"), value: b("2") }); // 2
    h.ok({ op: "put", key: b("b"), value: b("1") }); // 3
    h.ok({ op: "deleteRange", key: b("b") }); // 4
    h.ok({ op: "put", key: b("a"), value: b("3") }); // 5
    h.ok({ op: "compact", revision: 3 });
    assert.equal(h.sm.compactRevision(), 3);
    assert.deepEqual(h.sm.range({ key: b("a"), rangeEnd: ALL, revision: 3 }).kvs.map((kv) => `${s(kv.key)}${s(kv.value)}`), ["a2", "b1"]);
    assert.deepEqual(h.sm.range({ key: b("a"), rangeEnd: ALL, revision: 4 }).kvs.map((kv) => `${s(kv.key)}${s(kv.value)}`), ["a2"]);
    assert.throws(() => h.sm.range({ key: b("a"), revision: 2 }), (e: KvError) => e.code === "compacted" && e.compactRevision === 3);
    assert.equal(h.fail({ op: "compact", revision: 3 }).code, "compacted");
    assert.equal(h.fail({ op: "compact", revision: 6 }).code, "future_revision");
    h.ok({ op: "compact", revision: 5 });
    assert.equal(h.sm.revision(), 5);
    assert.equal(s(h.sm.range({ key: b("a"), revision: 5 }).kvs[0].value), "3");
    h.close();
  });

  it("eventsSince pages by whole revisions so resuming neither repeats nor skips", async () => {
    const h = await Harness.open();
    h.ok({ op: "put", key: b("a"), value: b("1") }); // 1
    h.ok({ op: "txn", compare: [], success: ["b", "c", "d"].map((k) => ({ op: "put" as const, key: b(k), value: b("1") })), failure: [] }); // 2
    h.ok({ op: "put", key: b("e"), value: b("1") }); // 3
    const seen: string[] = [];
    let from = 1;
    for (let i = 0; i < 10 && from <= h.sm.revision(); i++) {
      const page = h.sm.eventsSince(from, new Uint8Array(0), ALL, 2);
      seen.push(...page.events.map((e) => `${s(e.kv.key)}@${e.kv.modRevision}`));
      from = page.nextRevision;
    }
    assert.deepEqual(seen, ["a@1", "b@2", "c@2", "d@2", "e@3"]);
    h.close();
  });
});

describe("kv client sessions (Raft thesis §6.3)", () => {
  it("a retried (clientId, sequence) returns the stored result without applying again", async () => {
    const h = await Harness.open();
    const first = h.apply({ op: "put", key: b("k"), value: b("1") }, { clientId: "c1", sequence: 1 });
    const retry = h.apply({ op: "put", key: b("k"), value: b("1") }, { clientId: "c1", sequence: 1 });
    assert.deepEqual([retry.result, retry.duplicate, first.duplicate], [first.result, true, undefined]);
    assert.deepEqual([retry.events.length, h.sm.revision(), h.sm.range({ key: b("k") }).kvs[0].version], [0, 1, 1]);
    const failed = h.apply({ op: "put", key: b("k"), value: b("1"), lease: 9 }, { clientId: "c1", sequence: 2 });
    const failedRetry = h.apply({ op: "put", key: b("k"), value: b("1"), lease: 9 }, { clientId: "c1", sequence: 2 });
    assert.deepEqual([failed.error?.code, failedRetry.error?.code], ["lease_not_found", "lease_not_found"]);
    assert.equal(h.apply({ op: "put", key: b("k"), value: b("2") }, { clientId: "c1", sequence: 1 }).error?.code, "session_expired");
    const unknown = h.apply({ op: "put", key: b("k"), value: b("2") }, { clientId: "new", sequence: 5 }).error;
    assert.equal(unknown?.code, "session_expired");
    // The way out, in the message: a new session starts at sequence 1 (new-user trial U7).
    assert.match(unknown?.message ?? "", /client new is unknown or expired \(sequence 5\); a new session starts at X-Request-Seq 1/);
    h.close();
  });

  it("a client may skip sequences ahead; a lower one is refused with a message that does not claim it applied", async () => {
    const h = await Harness.open();
    const put = (seq: number) => h.apply({ op: "put", key: b("k"), value: b(String(seq)) }, { clientId: "app-1", sequence: seq });
    assert.equal(put(1).error, undefined);
    const five = put(5);
    assert.deepEqual([five.error, five.duplicate, h.sm.range({ key: b("k") }).kvs[0].version], [undefined, undefined, 2], "skipping ahead to 5 applies");
    const three = put(3);
    assert.equal(three.error?.code, "session_expired");
    assert.match(three.error?.message ?? "", /sequence 3 of client app-1 is older than its last applied sequence 5; its result is not kept/);
    assert.doesNotMatch(three.error?.message ?? "", /was applied/);
    assert.deepEqual([h.sm.range({ key: b("k") }).kvs[0].version, s(h.sm.range({ key: b("k") }).kvs[0].value)], [2, "5"], "3 did not apply");
    h.close();
  });

  it("sessions are bounded: the least recently used is evicted, and unused ones expire by applied index", async () => {
    const h = await Harness.open(undefined, { maxSessions: 2, sessionTtlEntries: 5 });
    const put = (c: string, seq: number) => h.apply({ op: "put", key: b(c), value: b(String(seq)) }, { clientId: c, sequence: seq });
    put("a", 1);
    put("b", 1);
    put("a", 2); // a used more recently than b
    put("c", 1); // evicts b
    assert.equal(put("b", 2).error?.code, "session_expired");
    assert.equal(put("a", 2).error, undefined, "a's session is still live: duplicate answered");
    for (let i = 0; i < 6; i++) h.ok({ op: "put", key: b("filler"), value: b("x") });
    assert.equal(put("c", 2).error?.code, "session_expired", "c expired after 5 entries unused");
    h.close();
  });
});

describe("kv size limits", () => {
  it("keys over 4 KiB and values over 1 MiB are refused with stable codes; limits are configurable", async () => {
    const h = await Harness.open();
    assert.equal(h.fail({ op: "put", key: new Uint8Array(4097), value: b("") }).code, "key_too_large");
    assert.equal(h.fail({ op: "put", key: b("k"), value: new Uint8Array(1024 * 1024 + 1) }).code, "value_too_large");
    h.ok({ op: "put", key: new Uint8Array(4096).fill(1), value: new Uint8Array(1024 * 1024) });
    assert.equal(h.sm.revision(), 1);
    h.close();
    const small = await Harness.open(undefined, { maxKeyBytes: 2, maxValueBytes: 3 });
    assert.equal(small.fail({ op: "put", key: b("abc"), value: b("") }).code, "key_too_large");
    assert.equal(small.fail({ op: "put", key: b("ab"), value: b("abcd") }).code, "value_too_large");
    small.close();
  });
});
