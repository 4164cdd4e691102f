/**
 * Nested txns, the duplicate-key rule across nesting, request validation of malformed decoded commands,
 * session outcomes holding bytes, and watch pages when one revision exceeds the page size.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Harness, b, s } from "./kv-helpers.ts";
import { validateRequest } from "../../src/kv/validate.ts";
import { decodeOutcome, encodeOutcome } from "../../src/kv/sessions.ts";
import { DEFAULT_KV_LIMITS, KvError, type KvRequest, type PutResult, type RangeResult, type TxnResult } from "../../src/kv/types.ts";

const ALL = new Uint8Array([0]);
const code = (req: unknown) => {
  try {
    validateRequest(req as KvRequest, DEFAULT_KV_LIMITS);
    return "ok";
  } catch (e) {
    return (e as KvError).code;
  }
};

describe("kv nested txns", () => {
  let h: Harness;
  before(async () => {
    h = await Harness.open();
    h.ok({ op: "put", key: b("a"), value: b("1") });
  });
  after(() => h.close());

  it("a nested txn runs its chosen branch within the outer txn's single revision", () => {
    const r = h.ok<TxnResult>({
      op: "txn",
      compare: [],
      success: [
        { op: "put", key: b("x"), value: b("1") },
        {
          op: "txn",
          compare: [{ key: b("x"), target: "version", result: "=", value: 1 }],
          success: [{ op: "put", key: b("y"), value: b("2") }, { op: "range", key: b("x") }],
          failure: [{ op: "put", key: b("z"), value: b("3") }],
        },
      ],
      failure: [],
    });
    const inner = r.responses[1] as TxnResult;
    assert.deepEqual([r.revision, inner.succeeded, inner.revision, (inner.responses[0] as PutResult).revision], [2, true, 2, 2]);
    assert.equal((inner.responses[1] as RangeResult).kvs[0].modRevision, 2);
    assert.deepEqual(h.sm.range({ key: b("a"), rangeEnd: ALL }).kvs.map((kv) => s(kv.key)), ["a", "x", "y"]);
  });

  it("the duplicate-key rule reaches into nested txns and across siblings after them", () => {
    const put = (k: string) => ({ op: "put" as const, key: b(k), value: b("v") });
    const nested = (success: KvRequest[], failure: KvRequest[] = []) => ({ op: "txn" as const, compare: [], success, failure }) as never;
    assert.equal(code({ op: "txn", compare: [], success: [put("k"), nested([put("k")])], failure: [] }), "duplicate_key_in_txn");
    assert.equal(code({ op: "txn", compare: [], success: [{ op: "deleteRange", key: b("a"), rangeEnd: ALL }, nested([], [put("q")])], failure: [] }), "duplicate_key_in_txn");
    assert.equal(code({ op: "txn", compare: [], success: [nested([put("k")], [put("k")])], failure: [] }), "ok", "alternative nested branches may write the same key");
    assert.equal(code({ op: "txn", compare: [], success: [nested([], [put("k")]), put("k")], failure: [] }), "duplicate_key_in_txn");
    assert.equal(code({ op: "txn", compare: [], success: [put("k")], failure: [put("k")] }), "ok", "success and failure are separate");
  });
});

describe("kv request validation", () => {
  it("refuses malformed decoded commands with bad_request instead of crashing", () => {
    assert.equal(code(null), "bad_request");
    assert.equal(code({ op: "nope" }), "bad_request");
    assert.equal(code({ op: "put", key: "k", value: b("v") }), "bad_request");
    assert.equal(code({ op: "put", key: b("k"), value: 5 }), "bad_request");
    assert.equal(code({ op: "put", key: new Uint8Array(0), value: b("v") }), "bad_request");
    assert.equal(code({ op: "txn", compare: [{ key: b("k"), target: "colour", result: "=", value: 1 }], success: [], failure: [] }), "bad_request");
    assert.equal(code({ op: "txn", compare: [{ key: b("k"), target: "version", result: "~", value: 1 }], success: [], failure: [] }), "bad_request");
    assert.equal(code({ op: "txn", compare: [], success: [{ op: "leaseGrant", id: 1, ttlSeconds: 1 }], failure: [] }), "bad_request");
    assert.equal(code({ op: "txn", compare: [null], success: [], failure: [] }), "bad_request");
    assert.equal(code({ op: "txn", compare: [], success: [null], failure: [] }), "bad_request");
    assert.equal(code({ op: "leaseGrant", id: 0, ttlSeconds: 5 }), "bad_request");
    assert.equal(code({ op: "leaseGrant", id: 1, ttlSeconds: 0 }), "bad_request");
    assert.equal(code({ op: "leaseExpire", ids: [1, -2] }), "bad_request");
    assert.equal(code({ op: "compact", revision: 1.5 }), "bad_request");
    assert.equal(code({ op: "txn", compare: Array(129).fill({ key: b("k"), target: "version", result: "=", value: 0 }), success: [], failure: [] }), "too_many_ops");
    assert.equal(code({ op: "deleteRange", key: b("a"), rangeEnd: new Uint8Array(4097) }), "key_too_large");
  });

  it("an invalid command in the log is that entry's error on apply, and the store is unchanged", async () => {
    const h = await Harness.open();
    const r = h.apply({ op: "put", key: "k", value: b("v") } as unknown as KvRequest);
    assert.deepEqual([r.error?.code, h.sm.revision(), h.sm.appliedIndex()], ["bad_request", 0, 1]);
    h.close();
  });
});

describe("kv session outcomes", () => {
  it("round-trip results holding bytes and errors holding a compact revision", () => {
    const result: PutResult = { op: "put", revision: 3, prevKv: { key: b("k"), value: new Uint8Array([0, 255, 7]), createRevision: 1, modRevision: 2, version: 2, lease: 0 } };
    assert.deepEqual(decodeOutcome(encodeOutcome({ result })).result, result);
    const err = decodeOutcome(encodeOutcome({ error: new KvError("compacted", "gone", { compactRevision: 9 }) })).error!;
    assert.deepEqual([err instanceof KvError, err.code, err.compactRevision], [true, "compacted", 9]);
  });

  it("a retried put with prevKv returns the same previous value bytes, even after the key changed again", async () => {
    const h = await Harness.open();
    h.ok({ op: "put", key: b("k"), value: b("old") });
    const first = h.ok<PutResult>({ op: "put", key: b("k"), value: b("new"), prevKv: true }, { clientId: "c", sequence: 1 });
    h.ok({ op: "put", key: b("k"), value: b("newer") });
    const retry = h.ok<PutResult>({ op: "put", key: b("k"), value: b("new"), prevKv: true }, { clientId: "c", sequence: 1 });
    assert.deepEqual(retry, first);
    assert.equal(s(retry.prevKv!.value), "old");
    assert.equal(s(h.sm.range({ key: b("k") }).kvs[0].value), "newer");
    h.close();
  });
});

describe("kv watch pages", () => {
  it("returns a revision larger than the page whole, then continues after it", async () => {
    const h = await Harness.open();
    h.ok({ op: "txn", compare: [], success: ["a", "b", "c", "d", "e"].map((k) => ({ op: "put" as const, key: b(k), value: b("1") })), failure: [] });
    h.ok({ op: "put", key: b("f"), value: b("1") });
    const p1 = h.sm.eventsSince(1, new Uint8Array(0), ALL, 2);
    assert.deepEqual([p1.events.length, p1.nextRevision], [5, 2]);
    const p2 = h.sm.eventsSince(p1.nextRevision, new Uint8Array(0), ALL, 2);
    assert.deepEqual([p2.events.map((e) => s(e.kv.key)), p2.nextRevision, p2.revision], [["f"], 3, 2]);
    assert.throws(() => h.sm.eventsSince(1, b("a"), undefined, 0), (e: KvError) => e.code === "bad_request");
    const future = h.sm.eventsSince(10, new Uint8Array(0), ALL, 2);
    assert.deepEqual([future.events.length, future.nextRevision], [0, 10], "a watch from the future keeps its start");
    h.close();
  });
});
