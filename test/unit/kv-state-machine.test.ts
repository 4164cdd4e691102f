/**
 * KV state machine rules (etcd v3 semantics): revisions, versions, range conventions, historical reads,
 * txn compares, apply idempotence and per-entry errors.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Harness, b, s } from "./kv-helpers.ts";
import { KvError, prefixEnd, type DeleteResult, type PutResult, type TxnResult } from "../../src/kv/types.ts";

const ALL = new Uint8Array([0]);

describe("kv state machine: revisions and versions", () => {
  let h: Harness;
  before(async () => {
    h = await Harness.open();
  });
  after(() => h.close());

  it("a put bumps the revision once and sets createRevision, modRevision and version like etcd", () => {
    assert.equal(h.sm.revision(), 0);
    assert.equal(h.ok<PutResult>({ op: "put", key: b("a"), value: b("1") }).revision, 1);
    assert.equal(h.ok<PutResult>({ op: "put", key: b("a"), value: b("2"), prevKv: true }).prevKv?.version, 1);
    const kv = h.sm.range({ key: b("a") }).kvs[0];
    assert.deepEqual([s(kv.value), kv.createRevision, kv.modRevision, kv.version, kv.lease], ["2", 1, 2, 2, 0]);
    assert.equal(h.sm.revision(), 2);
  });

  it("a delete that deletes nothing does not bump the revision; a real delete does, and resets version", () => {
    const none = h.ok<DeleteResult>({ op: "deleteRange", key: b("zz") });
    assert.deepEqual([none.deleted, none.revision, h.sm.revision()], [0, 2, 2]);
    const del = h.ok<DeleteResult>({ op: "deleteRange", key: b("a"), prevKv: true });
    assert.deepEqual([del.deleted, del.revision, s(del.prevKvs![0].value)], [1, 3, "2"]);
    assert.equal(h.sm.range({ key: b("a") }).count, 0);
    h.ok({ op: "put", key: b("a"), value: b("3") });
    const kv = h.sm.range({ key: b("a") }).kvs[0];
    assert.deepEqual([kv.createRevision, kv.version], [4, 1]);
  });

  it("reads at a past revision see the state of that revision", () => {
    assert.equal(s(h.sm.range({ key: b("a"), revision: 2 }).kvs[0].value), "2");
    assert.equal(h.sm.range({ key: b("a"), revision: 3 }).count, 0);
    assert.equal(h.sm.range({ key: b("a"), revision: 1 }).kvs[0].version, 1);
    assert.equal(h.sm.range({ key: b("a"), revision: 2 }).revision, 4, "header revision is the current one");
  });

  it("a read above the current revision is future_revision", () => {
    assert.throws(() => h.sm.range({ key: b("a"), revision: 99 }), (e: KvError) => e.code === "future_revision");
  });

  it("the applied index and term advance with every entry, including no-ops", () => {
    const before = h.sm.appliedIndex();
    h.sm.applyEntries([{ index: h.nextIndex++, term: 2, type: "normal", data: new Uint8Array(0) }]);
    assert.deepEqual([h.sm.appliedIndex(), h.sm.appliedTerm(), h.sm.revision()], [before + 1, 2, 4]);
  });
});

describe("kv state machine: range conventions", () => {
  let h: Harness;
  before(async () => {
    h = await Harness.open();
    for (const k of ["a", "ab", "abc", "b", "c"]) h.ok({ op: "put", key: b(k), value: b(k.toUpperCase()) });
    h.ok({ op: "put", key: new Uint8Array([0x61, 0xff]), value: b("x") });
  });
  after(() => h.close());

  const keys = (r: { kvs: Array<{ key: Uint8Array }> }) => r.kvs.map((kv) => s(kv.key));

  it("[key, rangeEnd) excludes rangeEnd (C21)", () => {
    assert.deepEqual(keys(h.sm.range({ key: b("a"), rangeEnd: b("c") })), ["a", "ab", "abc", "a\ufffd", "b"]);
  });

  it("rangeEnd [0] means every key >= key, and with an empty key every key", () => {
    assert.deepEqual(keys(h.sm.range({ key: b("b"), rangeEnd: ALL })), ["b", "c"]);
    assert.equal(h.sm.range({ key: new Uint8Array(0), rangeEnd: ALL }).count, 6);
  });

  it("prefixEnd gives the prefix range, carrying past 0xff and giving [0] for all-0xff", () => {
    assert.deepEqual(keys(h.sm.range({ key: b("ab"), rangeEnd: prefixEnd(b("ab")) })), ["ab", "abc"]);
    assert.deepEqual(prefixEnd(new Uint8Array([0x61, 0xff])), new Uint8Array([0x62]));
    assert.deepEqual(prefixEnd(new Uint8Array([0xff, 0xff])), new Uint8Array([0]));
  });

  it("limit, count and more; countOnly and keysOnly", () => {
    const r = h.sm.range({ key: b("a"), rangeEnd: ALL, limit: 2 });
    assert.deepEqual([keys(r), r.count, r.more], [["a", "ab"], 6, true]);
    const c = h.sm.range({ key: b("a"), rangeEnd: ALL, countOnly: true });
    assert.deepEqual([c.kvs.length, c.count, c.more], [0, 6, false]);
    const k = h.sm.range({ key: b("a"), keysOnly: true });
    assert.deepEqual([k.kvs[0].value.length, k.kvs[0].version], [0, 1]);
  });

  it("inverted, empty and keyless ranges are bad_request (C21)", () => {
    for (const req of [{ key: b("c"), rangeEnd: b("a") }, { key: b("a"), rangeEnd: b("a") }, { key: new Uint8Array(0) }]) {
      assert.throws(() => h.sm.range(req), (e: KvError) => e instanceof KvError && e.code === "bad_request");
    }
    assert.throws(() => h.sm.eventsSince(1, b("c"), b("a"), 10), (e: KvError) => e.code === "bad_request");
    assert.equal(h.fail({ op: "deleteRange", key: b("c"), rangeEnd: b("a") }).code, "bad_request");
  });
});

describe("kv state machine: txn", () => {
  let h: Harness;
  before(async () => {
    h = await Harness.open();
    h.ok({ op: "put", key: b("k"), value: b("v1") });
    h.ok({ op: "put", key: b("k"), value: b("v2") });
  });
  after(() => h.close());

  it("compares on value, version, modRevision, createRevision with = != < >", () => {
    const t = (compare: TxnResultCompare[]) => h.ok<TxnResult>({ op: "txn", compare, success: [], failure: [] }).succeeded;
    assert.equal(t([{ key: b("k"), target: "value", result: "=", value: b("v2") }]), true);
    assert.equal(t([{ key: b("k"), target: "value", result: "<", value: b("v3") }]), true);
    assert.equal(t([{ key: b("k"), target: "version", result: ">", value: 1 }]), true);
    assert.equal(t([{ key: b("k"), target: "modRevision", result: "=", value: 2 }]), true);
    assert.equal(t([{ key: b("k"), target: "createRevision", result: "!=", value: 1 }]), false);
    assert.equal(t([{ key: b("k"), target: "lease", result: "=", value: 0 }]), true);
  });

  it("a missing key compares as zero, except a value compare which is false (etcd applyCompare)", () => {
    const t = (c: TxnResultCompare) => h.ok<TxnResult>({ op: "txn", compare: [c], success: [], failure: [] }).succeeded;
    assert.equal(t({ key: b("nope"), target: "createRevision", result: "=", value: 0 }), true);
    assert.equal(t({ key: b("nope"), target: "value", result: "!=", value: b("x") }), false);
  });

  it("runs one branch atomically at one revision; range ops see earlier writes", () => {
    const r = h.ok<TxnResult>({
      op: "txn",
      compare: [{ key: b("k"), target: "version", result: "=", value: 2 }],
      success: [
        { op: "put", key: b("x"), value: b("1") },
        { op: "put", key: b("y"), value: b("2") },
        { op: "range", key: b("x"), rangeEnd: b("z") },
      ],
      failure: [{ op: "put", key: b("f"), value: b("no") }],
    });
    assert.equal(r.succeeded, true);
    assert.equal(r.revision, 3);
    const range = r.responses[2] as { kvs: Array<{ modRevision: number }>; revision: number };
    assert.deepEqual([range.kvs.length, range.kvs[0].modRevision, range.revision], [2, 3, 3]);
    assert.equal(h.sm.range({ key: b("f") }).count, 0);
  });

  it("inside a txn, a range at revision 0 sees earlier writes but a range at the pre-txn revision does not", () => {
    const before = h.sm.revision();
    const r = h.ok<TxnResult>({
      op: "txn",
      compare: [],
      success: [
        { op: "put", key: b("x"), value: b("new") },
        { op: "range", key: b("x") },
        { op: "range", key: b("x"), revision: before },
      ],
      failure: [],
    });
    const [, now, then] = r.responses as Array<{ kvs: Array<{ value: Uint8Array }> }>;
    assert.deepEqual([s(now.kvs[0].value), s(then.kvs[0].value)], ["new", "1"]);
    assert.equal(h.fail({ op: "txn", compare: [], success: [{ op: "range", key: b("x"), revision: h.sm.revision() + 1 }], failure: [] }).code, "future_revision");
  });

  it("a txn that writes nothing does not bump the revision", () => {
    const rev = h.sm.revision();
    const r = h.ok<TxnResult>({ op: "txn", compare: [], success: [{ op: "range", key: b("k") }], failure: [] });
    assert.deepEqual([r.revision, h.sm.revision()], [rev, rev]);
  });

  it("more than maxTxnOps ops is too_many_ops and changes nothing", () => {
    const success = Array.from({ length: 129 }, (_, i) => ({ op: "put" as const, key: b(`t${i}`), value: b("") }));
    const rev = h.sm.revision();
    assert.equal(h.fail({ op: "txn", compare: [], success, failure: [] }).code, "too_many_ops");
    assert.equal(h.sm.revision(), rev);
  });

  it("a KvError part-way through a txn undoes its earlier writes (lease check at apply)", () => {
    const e = h.fail({
      op: "txn",
      compare: [],
      success: [
        { op: "put", key: b("p1"), value: b("1") },
        { op: "put", key: b("p2"), value: b("2"), lease: 77 },
      ],
      failure: [],
    });
    assert.equal(e.code, "lease_not_found");
    assert.deepEqual([h.sm.range({ key: b("p1") }).count, h.sm.revision()], [0, 4]);
  });
});

type TxnResultCompare = Parameters<Harness["ok"]>[0] extends infer R ? (R extends { op: "txn"; compare: Array<infer C> } ? C : never) : never;

describe("kv state machine: applying entries", () => {
  it("skips entries at or below the applied index, so a replayed batch applies once", async () => {
    const h = await Harness.open();
    const e1 = h.entry({ request: { op: "put", key: b("a"), value: b("1") } });
    const e2 = h.entry({ request: { op: "put", key: b("a"), value: b("2") } });
    assert.equal(h.sm.applyEntries([e1]).length, 1);
    const out = h.sm.applyEntries([e1, e2]);
    assert.deepEqual(out.map((o) => o.index), [2]);
    assert.equal(h.sm.range({ key: b("a") }).kvs[0].version, 2);
    assert.throws(() => h.sm.applyEntries([{ index: 9, term: 1, type: "normal", data: new Uint8Array(0) }]), /does not follow/);
    assert.deepEqual(h.sm.applyEntries([]), []);
    h.close();
  });

  it("survives a restart with the applied index, revision and data of its last transaction", async () => {
    const h = await Harness.open();
    h.ok({ op: "put", key: b("a"), value: b("1") });
    h.close();
    const h2 = await Harness.open(h.driver.path);
    assert.deepEqual([h2.sm.appliedIndex(), h2.sm.revision(), s(h2.sm.range({ key: b("a") }).kvs[0].value)], [1, 1, "1"]);
    h2.close();
  });

  it("an I/O error part-way through a batch rolls the whole batch back, applied index included, and is rethrown", async () => {
    const h = await Harness.open();
    h.ok({ op: "put", key: b("a"), value: b("1") });
    // Fail the second entry's key write with an SQL error (a temporary trigger, so it works on every
    // driver): the first entry of the batch has already written by then.
    h.driver.exec("CREATE TEMP TRIGGER fail_c BEFORE INSERT ON kv_keys WHEN NEW.key = x'63' BEGIN SELECT RAISE(ABORT, 'disk I/O error (simulated)'); END;");
    const batch = [h.entry({ request: { op: "put", key: b("b"), value: b("1") } }), h.entry({ request: { op: "put", key: b("c"), value: b("1") } })];
    assert.throws(() => h.sm.applyEntries(batch), /simulated/);
    h.driver.exec("DROP TRIGGER fail_c");
    assert.deepEqual([h.sm.appliedIndex(), h.sm.revision(), h.sm.range({ key: b("b") }).count], [1, 1, 0]);
    assert.deepEqual(h.sm.applyEntries(batch).map((o) => o.error), [undefined, undefined], "the same batch applies once retried");
    assert.deepEqual([h.sm.appliedIndex(), h.sm.revision()], [3, 3]);
    h.close();
  });

  it("an undecodable entry is that entry's bad_request, and later entries still apply", async () => {
    const h = await Harness.open();
    const bad = { index: h.nextIndex++, term: 1, type: "normal" as const, data: new Uint8Array([1, 2]) };
    const good = h.entry({ request: { op: "put", key: b("a"), value: b("1") } });
    const out = h.sm.applyEntries([bad, good]);
    assert.deepEqual([out[0].error?.code, out[1].error, h.sm.appliedIndex()], ["bad_request", undefined, 2]);
    h.close();
  });

  it("returns the watch events of each entry", async () => {
    const h = await Harness.open();
    const r = h.apply({ op: "put", key: b("a"), value: b("1") });
    assert.deepEqual(r.events.map((e) => [e.type, s(e.kv.key), e.kv.modRevision]), [["put", "a", 1]]);
    const d = h.apply({ op: "deleteRange", key: b("a"), rangeEnd: ALL });
    assert.deepEqual(d.events.map((e) => [e.type, s(e.kv.key), e.kv.modRevision]), [["delete", "a", 2]]);
    h.close();
  });

  it("confChange entries update the persisted ConfState (via applyConfChange)", async () => {
    const h = await Harness.open();
    h.sm.bootstrap({ voters: ["n1"], votersOutgoing: [], learners: [] });
    h.sm.applyEntries([{ index: h.nextIndex++, term: 1, type: "confChange", data: new Uint8Array(0), confChange: { steps: [{ type: "addLearner", nodeId: "n2" }] } }]);
    assert.deepEqual(h.sm.confState(), { voters: ["n1"], votersOutgoing: [], learners: ["n2"] });
    h.close();
    const h2 = await Harness.open(h.driver.path);
    assert.deepEqual(h2.sm.confState().learners, ["n2"]);
    h2.close();
  });
});
