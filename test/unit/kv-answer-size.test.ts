/**
 * KvStateMachine.checkAnswerSize (src/kv/answer-size.ts): the answer of a range, txn or prevKv delete is
 * measured from key and value lengths (live table and history) and refused above the limit with
 * `response_too_large`; requests whose answer cannot exceed the limit are never measured. Exact figures:
 * key + value bytes + ANSWER_KEY_OVERHEAD_BYTES per key.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { ANSWER_KEY_OVERHEAD_BYTES, answerBytesBound } from "../../src/kv/answer-size.ts";
import { DEFAULT_KV_LIMITS, KvError, prefixEnd } from "../../src/kv/types.ts";
import { Harness, b } from "./kv-helpers.ts";

/** The KvError code `fn` throws, or "none". */
function codeOf(fn: () => void): string {
  try {
    fn();
    return "none";
  } catch (err) {
    assert.ok(err instanceof KvError, String(err));
    return err.code;
  }
}

describe("checkAnswerSize", () => {
  let h: Harness;
  // Keys "p/0".."p/3" (3 bytes) with 100-byte values: 103 + 64 = 167 counted bytes per key.
  const perKey = 3 + 100 + ANSWER_KEY_OVERHEAD_BYTES;
  before(async () => {
    h = await Harness.open();
    for (let i = 0; i < 4; i++) h.ok({ op: "put", key: b(`p/${i}`), value: new Uint8Array(100) });
    // Revision 5 shrinks p/0 to 1 byte: the current state is smaller than revision 4's.
    h.ok({ op: "put", key: b("p/0"), value: new Uint8Array(1) });
  });
  after(() => h?.close());

  it("measures the live range exactly at the limit and one byte below it", () => {
    const range = { key: b("p/"), rangeEnd: prefixEnd(b("p/")) };
    const now = 3 * perKey + (3 + 1 + ANSWER_KEY_OVERHEAD_BYTES);
    assert.equal(codeOf(() => h.sm.checkAnswerSize(range, now)), "none");
    assert.equal(codeOf(() => h.sm.checkAnswerSize(range, now - 1)), "response_too_large");
    assert.equal(codeOf(() => h.sm.checkAnswerSize({ ...range, limit: 2 }, (3 + 1 + 64) + perKey)), "none");
    assert.equal(codeOf(() => h.sm.checkAnswerSize({ ...range, keysOnly: true }, 4 * (3 + ANSWER_KEY_OVERHEAD_BYTES))), "none");
    assert.equal(codeOf(() => h.sm.checkAnswerSize({ ...range, countOnly: true }, 0)), "none");
  });

  it("measures a past revision from history, and leaves compacted or future revisions to the read", () => {
    const range = { key: b("p/"), rangeEnd: prefixEnd(b("p/")), revision: 4 };
    assert.equal(codeOf(() => h.sm.checkAnswerSize(range, 4 * perKey)), "none");
    assert.equal(codeOf(() => h.sm.checkAnswerSize(range, 4 * perKey - 1)), "response_too_large");
    assert.equal(codeOf(() => h.sm.checkAnswerSize({ ...range, revision: 99 }, 1)), "none");
  });

  it("counts the txn branch its compares choose, and prevKv deletes", () => {
    const big = { op: "range" as const, key: b("p/"), rangeEnd: prefixEnd(b("p/")) };
    const small = { op: "range" as const, key: b("p/"), rangeEnd: prefixEnd(b("p/")), limit: 1 };
    const holds = { key: b("p/1"), target: "version" as const, result: "=" as const, value: 1 };
    const fails = { ...holds, value: 2 };
    assert.equal(codeOf(() => h.sm.checkAnswerSize({ op: "txn", compare: [holds], success: [big], failure: [small] }, 2 * perKey)), "response_too_large");
    assert.equal(codeOf(() => h.sm.checkAnswerSize({ op: "txn", compare: [fails], success: [big], failure: [small] }, 2 * perKey)), "none");
    const del = { op: "deleteRange" as const, key: b("p/"), rangeEnd: prefixEnd(b("p/")) };
    assert.equal(codeOf(() => h.sm.checkAnswerSize(del, 1)), "none");
    assert.equal(codeOf(() => h.sm.checkAnswerSize({ ...del, prevKv: true }, 2 * perKey)), "response_too_large");
  });

  it("bounds one-key reads and writes without reading the store", () => {
    const one = DEFAULT_KV_LIMITS.maxKeyBytes + DEFAULT_KV_LIMITS.maxValueBytes + ANSWER_KEY_OVERHEAD_BYTES;
    assert.equal(answerBytesBound({ key: b("k") }, DEFAULT_KV_LIMITS), one);
    assert.equal(answerBytesBound({ key: b("k"), rangeEnd: b("l") }, DEFAULT_KV_LIMITS), Infinity);
    const conditionalPut = { op: "txn" as const, compare: [], success: [{ op: "put" as const, key: b("k"), value: b("v") }], failure: [{ op: "range" as const, key: b("k") }] };
    assert.equal(answerBytesBound(conditionalPut, DEFAULT_KV_LIMITS), one);
  });
});
