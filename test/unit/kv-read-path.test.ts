/**
 * The single-key read fast path (issue #6, read path): `KvStateMachine.range` of one key at the current
 * revision reads the key and the store revision with one SQL statement, and answers exactly what the
 * general range path answers (etcd range semantics: count 0/1, `more` false, the store revision).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Harness, b } from "./kv-helpers.ts";
import { readRange } from "../../src/kv/ops.ts";
import { KvStore } from "../../src/kv/store.ts";
import type { SqlDriver, SqlStatement } from "../../src/kv/sql-driver.ts";
import { DEFAULT_KV_LIMITS, type RangeRequest } from "../../src/kv/types.ts";

/** Wraps a driver so that every statement call (run/get/all) made through it is counted. */
function countingDriver(inner: SqlDriver): { driver: SqlDriver; calls: () => number } {
  let n = 0;
  const wrap = (st: SqlStatement): SqlStatement => ({
    run: (...p) => (n++, st.run(...p)),
    get: (...p) => (n++, st.get(...p)),
    all: (...p) => (n++, st.all(...p)),
  });
  const driver: SqlDriver = { ...inner, prepare: (sql) => wrap(inner.prepare(sql)), transaction: inner.transaction, exec: inner.exec, close: inner.close, path: inner.path };
  return { driver, calls: () => n };
}

describe("kv read path: single-key fast path", () => {
  let h: Harness;
  before(async () => {
    h = await Harness.open();
    h.ok({ op: "put", key: b("a"), value: b("one"), lease: 0 });
    h.ok({ op: "put", key: b("b"), value: b("two"), lease: 0 });
    h.ok({ op: "put", key: b("a"), value: b("three"), lease: 0 });
    h.ok({ op: "deleteRange", key: b("b") });
    h.ok({ op: "put", key: b("c"), value: new Uint8Array([0, 255, 7]), lease: 0 });
  });
  after(() => h.close());

  const cases: Array<[string, RangeRequest]> = [
    ["a key put twice", { key: b("a") }],
    ["a deleted key", { key: b("b") }],
    ["a key never written", { key: b("zz") }],
    ["binary value", { key: b("c") }],
    ["keysOnly", { key: b("a"), keysOnly: true }],
    ["countOnly", { key: b("a"), countOnly: true }],
    ["countOnly of an absent key", { key: b("nope"), countOnly: true }],
    ["limit 1", { key: b("c"), limit: 1 }],
  ];
  for (const [name, req] of cases) {
    it(`answers like the general path: ${name}`, () => {
      const store = new KvStore(h.driver);
      const general = readRange(store, req, DEFAULT_KV_LIMITS, store.revision());
      const fast = h.sm.range(req);
      assert.deepEqual(fast, general);
    });
  }

  it("reads the revision of the store with the key: revision 5 after five writes, modRevision 3 for 'a'", () => {
    const r = h.sm.range({ key: b("a") });
    assert.equal(r.revision, 5);
    assert.equal(r.count, 1);
    assert.equal(r.more, false);
    assert.equal(r.kvs[0].modRevision, 3);
    assert.equal(r.kvs[0].createRevision, 1);
    assert.equal(r.kvs[0].version, 2);
    assert.deepEqual(r.kvs[0].value, b("three"));
  });

  it("runs one SQL statement for a single key at the current revision (the general path ran four)", () => {
    const { driver, calls } = countingDriver(h.driver);
    const store = new KvStore(driver);
    const before = calls();
    const r = readRange(store, { key: b("a") }, DEFAULT_KV_LIMITS);
    assert.equal(calls() - before, 1);
    assert.deepEqual(r.kvs[0].value, b("three"));
    const miss = calls();
    assert.equal(readRange(store, { key: b("zz") }, DEFAULT_KV_LIMITS).count, 0);
    assert.equal(calls() - miss, 1);
  });

  it("a read at a past revision still checks compaction and reads history", () => {
    h.ok({ op: "compact", revision: 4 });
    assert.deepEqual(h.sm.range({ key: b("a"), revision: 4 }).kvs[0].value, b("three"));
    assert.throws(() => h.sm.range({ key: b("a"), revision: 2 }), (e: Error & { code?: string }) => e.code === "compacted");
    assert.throws(() => h.sm.range({ key: b("a"), revision: 99 }), (e: Error & { code?: string }) => e.code === "future_revision");
  });
});

describe("kv read path: an empty store", () => {
  it("answers revision 0 and no key before the first write", async () => {
    const h = await Harness.open();
    try {
      assert.deepEqual(h.sm.range({ key: b("a") }), { op: "range", kvs: [], count: 0, more: false, revision: 0 });
    } finally {
      h.close();
    }
  });
});
