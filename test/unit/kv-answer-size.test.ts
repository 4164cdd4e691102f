/**
 * KvStateMachine.checkAnswerSize (src/kv/answer-size.ts): the answer of a range, txn or prevKv delete is
 * measured from key and value lengths (live table and history) and refused above the limit with
 * `response_too_large`; requests whose answer cannot exceed the limit are never measured. Exact figures:
 * key + value bytes + ANSWER_KEY_OVERHEAD_BYTES per key. Then the apply-time cap a txn or prevKv delete
 * carries (Command.maxAnswerBytes, AnswerBudget): writes between the leader's check and the apply, or the
 * branch's own, cannot take the answer past it; a refusal applies nothing and is the same on every replica.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { ANSWER_KEY_OVERHEAD_BYTES, answerBytesBound, answerCapToCarry } from "../../src/kv/answer-size.ts";
import type { AppliedEntry } from "../../src/kv/state-machine.ts";
import { DEFAULT_KV_LIMITS, KvError, prefixEnd, type Command, type KvRequest, type RangeOp, type RangeResult, type RequestOp, type TxnRequest, type TxnResult } from "../../src/kv/types.ts";
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
    // Only a request whose answer could pass the cap carries it in its entry (no extra log bytes otherwise).
    assert.equal(answerCapToCarry(conditionalPut, DEFAULT_KV_LIMITS, one), undefined);
    assert.equal(answerCapToCarry(conditionalPut, DEFAULT_KV_LIMITS, one - 1), one - 1);
    const prefixRead = { op: "txn" as const, compare: [], success: [{ op: "range" as const, key: b("k"), rangeEnd: b("l") }], failure: [] };
    assert.equal(answerCapToCarry(prefixRead, DEFAULT_KV_LIMITS, 16 << 20), 16 << 20);
    assert.equal(answerCapToCarry({ op: "deleteRange", key: b("k"), rangeEnd: b("l") }, DEFAULT_KV_LIMITS, 1), undefined);
    assert.equal(answerCapToCarry({ op: "deleteRange", key: b("k"), rangeEnd: b("l"), prevKv: true }, DEFAULT_KV_LIMITS, 1), 1);
    // Each prevKv put of a txn answers one previous value: 20 of them can pass a 16 MiB cap.
    const prevKvPuts = { op: "txn" as const, compare: [], success: Array.from({ length: 20 }, (_, i) => ({ op: "put" as const, key: b(`k${i}`), value: b("v"), prevKv: true })), failure: [] };
    assert.equal(answerBytesBound(prevKvPuts, DEFAULT_KV_LIMITS), 20 * one);
    assert.equal(answerCapToCarry(prevKvPuts, DEFAULT_KV_LIMITS, 16 << 20), 16 << 20);
  });
});

/** Bytes the answer's kvs count under the cap rule: key + value + ANSWER_KEY_OVERHEAD_BYTES per key. */
function countedBytes(kvs: Array<{ key: Uint8Array; value: Uint8Array }>): number {
  return kvs.reduce((n, kv) => n + kv.key.length + kv.value.length + ANSWER_KEY_OVERHEAD_BYTES, 0);
}

/** Applies `request` as the next entry carrying `maxAnswerBytes` (undefined: an entry from before the cap travelled). */
function applyCapped(h: Harness, request: KvRequest, maxAnswerBytes: number | undefined): AppliedEntry {
  return h.sm.applyEntries([h.entry(maxAnswerBytes === undefined ? { request } : { request, maxAnswerBytes })])[0];
}

describe("the cap a txn carries is held at apply (Command.maxAnswerBytes)", () => {
  let h: Harness;
  // Keys "q/0".."q/2" (3 bytes) with 100-byte values: perKey counted bytes each.
  const perKey = 3 + 100 + ANSWER_KEY_OVERHEAD_BYTES;
  const prefix = { key: b("q/"), rangeEnd: prefixEnd(b("q/")) };
  const txn: TxnRequest = { op: "txn", compare: [], success: [{ op: "put", key: b("w"), value: b("x") }, { op: "range", ...prefix }], failure: [] };
  before(async () => {
    h = await Harness.open();
    for (let i = 0; i < 3; i++) h.ok({ op: "put", key: b(`q/${i}`), value: new Uint8Array(100) });
  });
  after(() => h?.close());

  it("a put landing between the leader's check and the apply makes the txn fail whole: no write, no revision, no events", () => {
    const cap = 3 * perKey;
    assert.equal(codeOf(() => h.sm.checkAnswerSize(txn, cap)), "none"); // the leader's check passes
    h.ok({ op: "put", key: b("q/3"), value: new Uint8Array(100) }); // a concurrent write grows the range
    const revision = h.sm.revision();
    const refused = applyCapped(h, txn, cap);
    assert.equal(refused.error?.code, "response_too_large");
    assert.match(refused.error?.message ?? "", new RegExp(`at least ${4 * perKey} bytes .*limit of ${cap} bytes`));
    assert.equal(refused.result, undefined);
    assert.deepEqual(refused.events, []);
    assert.equal(h.sm.revision(), revision);
    assert.equal(h.sm.range({ key: b("w") }).count, 0);
    // At exactly the answer's size it applies, and answers the 4 keys.
    const fits = applyCapped(h, txn, 4 * perKey);
    assert.equal(fits.error, undefined);
    const r = fits.result as TxnResult;
    assert.equal((r.responses[1] as RangeResult).kvs.length, 4);
    assert.equal(countedBytes((r.responses[1] as RangeResult).kvs), 4 * perKey);
    assert.equal(h.sm.revision(), revision + 1);
  });

  it("an entry without the field (written before the cap travelled) applies uncapped, as before", () => {
    const revision = h.sm.revision();
    const old = applyCapped(h, txn, undefined);
    assert.equal(old.error, undefined);
    assert.equal(((old.result as TxnResult).responses[1] as RangeResult).kvs.length, 4);
    assert.equal(h.sm.revision(), revision + 1);
  });

  it("counts the branch's own earlier writes, nested txns and prevKv deletes, and fails before later reads", () => {
    // The branch's own put grows its range: the leader's estimate (state before the txn) misses it.
    const grow: TxnRequest = { op: "txn", compare: [], success: [{ op: "put", key: b("q/4"), value: new Uint8Array(500) }, { op: "range", ...prefix }], failure: [] };
    assert.equal(codeOf(() => h.sm.checkAnswerSize(grow, 4 * perKey)), "none");
    const revision = h.sm.revision();
    assert.equal(applyCapped(h, grow, 4 * perKey).error?.code, "response_too_large");
    assert.equal(h.sm.range({ key: b("q/4") }).count, 0);
    // Two nested reads of 4 keys each: the sum counts, not each alone.
    const nested: TxnRequest = { op: "txn", compare: [], success: [{ op: "range", ...prefix }, { op: "txn", compare: [], success: [{ op: "range", ...prefix }], failure: [] }], failure: [] };
    assert.equal(applyCapped(h, nested, 8 * perKey - 1).error?.code, "response_too_large");
    assert.equal(applyCapped(h, nested, 8 * perKey).error, undefined);
    // prevKv puts answer the values they replace: 4 keys' worth.
    const swap: TxnRequest = { op: "txn", compare: [], success: [0, 1, 2, 3].map((i) => ({ op: "put" as const, key: b(`q/${i}`), value: new Uint8Array(100), prevKv: true })), failure: [] };
    assert.equal(codeOf(() => h.sm.checkAnswerSize(swap, 4 * perKey - 1)), "response_too_large");
    assert.equal(applyCapped(h, swap, 4 * perKey - 1).error?.code, "response_too_large");
    assert.equal(h.sm.revision(), revision);
    // A prevKv delete: refused deletes nothing; a plain delete of the same range is not capped.
    const del = { op: "deleteRange" as const, ...prefix, prevKv: true };
    assert.equal(applyCapped(h, del, 4 * perKey - 1).error?.code, "response_too_large");
    assert.equal(h.sm.range(prefix).count, 4);
    assert.equal(h.sm.revision(), revision);
  });

  it("measures each read as it is answered: limit, keysOnly, countOnly, the store revision inside a txn, a past revision", async () => {
    // g is held to caps; twin, with the same history, answers uncapped: its answer's counted bytes are the
    // exact figure g must refuse one byte below and accept at.
    const [g, twin] = [await Harness.open(), await Harness.open()];
    try {
      for (let i = 0; i < 5; i++) for (const m of [g, twin]) m.ok({ op: "put", key: b(`r/${i}`), value: new Uint8Array(10 * (i + 1)) });
      const range = { key: b("r/"), rangeEnd: prefixEnd(b("r/")) };
      const reads: Array<(current: number) => RangeOp> = [
        () => ({ op: "range", ...range }),
        () => ({ op: "range", ...range, limit: 2 }),
        () => ({ op: "range", ...range, keysOnly: true }),
        (current) => ({ op: "range", ...range, revision: current }), // from history: the branch's own put is not in it
        (current) => ({ op: "range", ...range, revision: current - 2 }),
      ];
      for (const [i, makeRead] of reads.entries()) {
        assert.equal(g.sm.revision(), twin.sm.revision());
        const t: TxnRequest = { op: "txn", compare: [], success: [{ op: "put", key: b("r/1"), value: new Uint8Array(999) }, makeRead(g.sm.revision())], failure: [] };
        const exact = countedBytes(((twin.ok(t) as TxnResult).responses[1] as RangeResult).kvs);
        const before = g.sm.revision();
        assert.equal(applyCapped(g, t, exact - 1).error?.code, "response_too_large", `read ${i}`);
        assert.equal(g.sm.revision(), before);
        const ok = applyCapped(g, t, exact);
        assert.equal(ok.error, undefined, `read ${i}: ${ok.error?.message}`);
        assert.equal(countedBytes(((ok.result as TxnResult).responses[1] as RangeResult).kvs), exact);
        for (const m of [g, twin]) m.ok({ op: "put", key: b("r/1"), value: new Uint8Array(20) }); // back to the seeded size
      }
      const countOnly = { op: "txn" as const, compare: [], success: [{ op: "range" as const, ...range, countOnly: true }], failure: [] };
      assert.equal(applyCapped(g, countOnly, 1).error, undefined);
    } finally {
      g.close();
      twin.close();
    }
  });
});

describe("an apply-time refusal is deterministic", () => {
  it("two state machines applying the same entries (refused, accepted, retried) end with the same revision and answers", async () => {
    const [x, y] = [await Harness.open(), await Harness.open()];
    try {
      const range = { key: b("d/"), rangeEnd: prefixEnd(b("d/")) };
      const read: TxnRequest = { op: "txn", compare: [], success: [{ op: "put", key: b("mark"), value: b("1") }, { op: "range", ...range }], failure: [] };
      const commands: Command[] = [];
      for (let i = 0; i < 6; i++) {
        commands.push({ request: { op: "put", key: b(`d/${i}`), value: new Uint8Array(50 * i) } });
        commands.push({ request: read, maxAnswerBytes: 600 });
      }
      commands.push({ request: read, maxAnswerBytes: 600, session: { clientId: "c", sequence: 1 } });
      commands.push({ request: read, maxAnswerBytes: 10_000, session: { clientId: "c", sequence: 1 } }); // retry: stored outcome
      commands.push({ request: { op: "deleteRange", ...range, prevKv: true }, maxAnswerBytes: 600 });
      const entries = commands.map((cmd) => x.entry(cmd));
      y.nextIndex = x.nextIndex;
      const outcome = (e: AppliedEntry) => (e.error ? { code: e.error.code, message: e.error.message } : { result: e.result, events: e.events.length });
      const ax = x.sm.applyEntries(entries).map(outcome);
      const ay = y.sm.applyEntries(entries).map(outcome);
      assert.deepEqual(ax, ay);
      assert.equal(x.sm.revision(), y.sm.revision());
      assert.deepEqual(x.sm.range(range), y.sm.range(range));
      const refused = ax.filter((o) => "code" in o && o.code === "response_too_large").length;
      // Counted bytes after each put: 67, 184, 351, 568, 835, 1152: refused after the 5th and 6th puts, the
      // session's first try, its retry (the stored outcome, whatever the retry's cap) and the delete.
      assert.equal(refused, 5, JSON.stringify(ax.map((o) => ("code" in o ? o.code : "ok"))));
      assert.deepEqual(ax[ax.length - 2], ax[ax.length - 3]);
      assert.equal(x.sm.range(range).count, 6);
    } finally {
      x.close();
      y.close();
    }
  });
});

/** Counted bytes of every kv a txn answers: its ranges' kvs and its deletes' prevKvs, nested txns included. */
function txnAnswerBytes(r: TxnResult): number {
  let n = 0;
  for (const x of r.responses) {
    if (x.op === "range") n += countedBytes(x.kvs);
    else if (x.op === "put") n += x.prevKv ? countedBytes([x.prevKv]) : 0;
    else if (x.op === "deleteRange") n += countedBytes(x.prevKvs ?? []);
    else if (x.op === "txn") n += txnAnswerBytes(x);
  }
  return n;
}

describe("the apply-time cap is exact (property)", () => {
  it("a capped txn is refused, applying nothing, exactly when its uncapped answer counts more bytes than the cap; else it answers the same", async () => {
    // capped is held to caps; twin applies every txn uncapped. After a refusal capped applies the txn
    // uncapped too, so both keep one history (and the same revisions for revision reads).
    const [capped, twin] = [await Harness.open(), await Harness.open()];
    const keyOf = (i: number) => b(`t/${"abcde"[i]}`);
    const range = fc.record({
      op: fc.constant("range" as const),
      which: fc.constantFrom("prefix", "one", "span"),
      i: fc.nat({ max: 4 }),
      limit: fc.nat({ max: 3 }),
      keysOnly: fc.boolean(),
      countOnly: fc.boolean(),
      back: fc.option(fc.nat({ max: 3 })),
    });
    const put = fc.record({ op: fc.constant("put" as const), i: fc.nat({ max: 4 }), size: fc.nat({ max: 300 }), prevKv: fc.boolean() });
    const del = fc.record({ op: fc.constant("deleteRange" as const), i: fc.nat({ max: 4 }), prevKv: fc.boolean() });
    const step = fc.record({ seed: fc.array(put, { maxLength: 3 }), branch: fc.array(fc.oneof(range, range, put, del), { minLength: 1, maxLength: 5 }), cap: fc.nat({ max: 2000 }) });
    try {
      await fc.assert(
        fc.asyncProperty(step, async ({ seed, branch, cap }) => {
          for (const p of seed) for (const m of [capped, twin]) m.ok({ op: "put", key: keyOf(p.i), value: new Uint8Array(p.size).fill(p.i) });
          const current = twin.sm.revision();
          const ops: RequestOp[] = branch.map((o) => {
            if (o.op === "put") return { op: "put", key: keyOf(o.i), value: new Uint8Array(o.size), prevKv: o.prevKv };
            if (o.op === "deleteRange") return { op: "deleteRange", key: keyOf(o.i), rangeEnd: prefixEnd(b("t/")), prevKv: o.prevKv };
            const bounds = o.which === "prefix" ? { key: b("t/"), rangeEnd: prefixEnd(b("t/")) } : o.which === "one" ? { key: keyOf(o.i) } : { key: keyOf(o.i), rangeEnd: b("t/z") };
            const revision = o.back === null ? undefined : Math.max(1, current - o.back);
            return { op: "range", ...bounds, limit: o.limit, keysOnly: o.keysOnly, countOnly: o.countOnly, ...(revision === undefined ? {} : { revision }) };
          });
          const txn: TxnRequest = { op: "txn", compare: [], success: ops, failure: [] };
          const free = twin.apply(txn);
          const before = capped.sm.revision();
          const held = applyCapped(capped, txn, cap);
          if (free.error) {
            assert.equal(held.error?.code, free.error.code); // e.g. duplicate_key_in_txn: validation comes first
            return;
          }
          const exact = txnAnswerBytes(free.result as TxnResult);
          if (exact > cap) {
            assert.equal(held.error?.code, "response_too_large", `answer ${exact} bytes, cap ${cap}`);
            assert.equal(capped.sm.revision(), before);
            assert.deepEqual(held.events, []);
            assert.equal(applyCapped(capped, txn, undefined).error, undefined);
          } else {
            assert.equal(held.error, undefined, `answer ${exact} bytes, cap ${cap}: ${held.error?.message}`);
            assert.deepEqual(held.result, free.result);
          }
          assert.equal(capped.sm.revision(), twin.sm.revision());
        }),
        { numRuns: 150 },
      );
    } finally {
      capped.close();
      twin.close();
    }
  });
});
