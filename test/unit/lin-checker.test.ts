/**
 * The linearizability checker (test/lin) against hand-made histories whose verdict is known: it must accept
 * linearizable ones and reject a stale read, a lost write and a CAS applied twice, and it must give up
 * ("unknown") rather than hang when the search is bounded.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { checkOperations, type Model, type Operation } from "../lin/checker.ts";
import { kvModel, type KvOperation } from "../lin/kv-model.ts";

const put = (c: number, key: string, value: string, call: number, ret?: number): KvOperation => ({
  clientId: c,
  input: { kind: "put", key, value },
  call,
  ...(ret === undefined ? {} : { ret, output: {} }),
});
const get = (c: number, key: string, value: string | null, call: number, ret: number): KvOperation => ({
  clientId: c,
  input: { kind: "get", key },
  call,
  ret,
  output: { value },
});
const cas = (c: number, key: string, expected: string | null, value: string, ok: boolean | undefined, call: number, ret?: number): KvOperation => ({
  clientId: c,
  input: { kind: "cas", key, expected, value },
  call,
  ...(ok === undefined || ret === undefined ? {} : { ret, output: { ok } }),
});

describe("linearizability checker: linearizable histories", () => {
  it("accepts an empty history", () => {
    assert.equal(checkOperations(kvModel, []).verdict, "ok");
  });

  it("accepts a sequential history", () => {
    const h = [put(1, "x", "a", 1, 2), get(2, "x", "a", 3, 4), cas(1, "x", "a", "b", true, 5, 6), get(2, "x", "b", 7, 8)];
    const r = checkOperations(kvModel, h);
    assert.equal(r.verdict, "ok");
    assert.equal(r.partitions, 1);
  });

  it("accepts a read concurrent with a write returning either the old or the new value", () => {
    const oldValue = [put(1, "x", "a", 1, 2), put(1, "x", "b", 3, 10), get(2, "x", "a", 4, 5)];
    const newValue = [put(1, "x", "a", 1, 2), put(1, "x", "b", 3, 10), get(2, "x", "b", 4, 5)];
    assert.equal(checkOperations(kvModel, oldValue).verdict, "ok");
    assert.equal(checkOperations(kvModel, newValue).verdict, "ok");
  });

  it("accepts reads that only make sense if concurrent writes took effect in a particular order", () => {
    // Writes a and b overlap; reader sees b then a, so b took effect before a.
    const h = [put(1, "x", "a", 1, 10), put(2, "x", "b", 1, 10), get(3, "x", "b", 2, 3), get(3, "x", "a", 4, 5)];
    assert.equal(checkOperations(kvModel, h).verdict, "ok");
  });

  it("accepts an unknown-outcome write that took effect long after its call", () => {
    const h = [put(1, "x", "a", 1, 2), put(2, "x", "b", 3), get(3, "x", "a", 10, 11), get(3, "x", "b", 20, 21)];
    assert.equal(checkOperations(kvModel, h).verdict, "ok");
  });

  it("accepts an unknown-outcome write that never took effect", () => {
    const h = [put(1, "x", "a", 1, 2), put(2, "x", "b", 3), get(3, "x", "a", 10, 11)];
    assert.equal(checkOperations(kvModel, h).verdict, "ok");
  });

  it("checks keys independently and reports how many partitions it saw", () => {
    const h = [put(1, "x", "a", 1, 2), put(1, "y", "b", 3, 4), get(2, "x", "a", 5, 6), get(2, "y", "b", 5, 6), get(2, "z", null, 7, 8)];
    const r = checkOperations(kvModel, h);
    assert.equal(r.verdict, "ok");
    assert.equal(r.partitions, 3);
  });
});

describe("linearizability checker: non-linearizable histories", () => {
  it("rejects a stale read (old value after a newer write completed)", () => {
    const h = [put(1, "x", "a", 1, 2), put(1, "x", "b", 3, 4), get(2, "x", "a", 5, 6)];
    const r = checkOperations(kvModel, h);
    assert.equal(r.verdict, "illegal");
    assert.equal(r.partition?.length, 3);
    assert.match(r.message, /get\(x\) = "a"/);
  });

  it("rejects a lost write (an acknowledged put that a later read does not see)", () => {
    const h = [put(1, "x", "a", 1, 2), get(2, "x", null, 3, 4)];
    assert.equal(checkOperations(kvModel, h).verdict, "illegal");
  });

  it("rejects a CAS applied twice (both succeed from the same expected value)", () => {
    const h = [put(1, "x", "0", 1, 2), cas(2, "x", "0", "1", true, 3, 10), cas(3, "x", "0", "1", true, 4, 11)];
    assert.equal(checkOperations(kvModel, h).verdict, "illegal");
  });

  it("rejects a read of a value that no one wrote", () => {
    const h = [put(1, "x", "a", 1, 2), get(2, "x", "zzz", 3, 4)];
    assert.equal(checkOperations(kvModel, h).verdict, "illegal");
  });

  it("rejects reads that see a value appear, vanish and reappear (non-monotonic reads)", () => {
    const h = [put(1, "x", "a", 1, 20), get(2, "x", "a", 2, 3), get(2, "x", null, 4, 5)];
    assert.equal(checkOperations(kvModel, h).verdict, "illegal");
  });

  it("rejects an unknown-outcome write observed before it was invoked", () => {
    const h = [get(1, "x", "b", 1, 2), put(2, "x", "b", 3)];
    assert.equal(checkOperations(kvModel, h).verdict, "illegal");
  });

  it("finds the illegal key among several legal ones", () => {
    const h = [put(1, "a", "1", 1, 2), get(1, "a", "1", 3, 4), put(1, "b", "1", 1, 2), get(2, "b", null, 5, 6)];
    const r = checkOperations(kvModel, h);
    assert.equal(r.verdict, "illegal");
    assert.ok(r.partition?.every((op) => op.input.key === "b"));
  });
});

describe("linearizability checker: unknown-outcome writes", () => {
  it("keeps an unobserved unknown write when only it explains a failed CAS", () => {
    // put(x, X) done; an unknown put(x, v) is concurrent with cas(X -> Y) = false, which is only legal if
    // put(v) took effect first. Pruning the unobserved write must not turn this into a false alarm.
    const h = [put(1, "x", "X", 1, 2), put(2, "x", "v", 3), cas(3, "x", "X", "Y", false, 4, 5)];
    assert.equal(checkOperations(kvModel, h).verdict, "ok");
  });

  it("still rejects when no fate of the unknown writes explains the history", () => {
    const h = [put(1, "x", "a", 1, 2), put(2, "x", "zz", 3), get(3, "x", "b", 4, 5)];
    assert.equal(checkOperations(kvModel, h).verdict, "illegal");
  });

  it("many unobserved unknown writes stay cheap to check", () => {
    const h: KvOperation[] = [];
    let t = 1;
    for (let i = 0; i < 30; i++) h.push(put(100 + i, "x", `u${i}`, t++));
    for (let i = 0; i < 30; i++) {
      h.push(put(1, "x", `w${i}`, t, t + 1));
      h.push(get(2, "x", `w${i}`, t + 2, t + 3));
      t += 4;
    }
    const r = checkOperations(kvModel, h, { maxSteps: 5_000 });
    assert.equal(r.verdict, "ok");
  });
});

describe("linearizability checker: bounded search", () => {
  it("returns unknown instead of searching forever when maxSteps is exceeded", () => {
    // Many fully concurrent writes and a final impossible read: proving it illegal needs a large search.
    const h: KvOperation[] = [];
    for (let i = 0; i < 14; i++) h.push(put(i, "x", String(i), 1, 100));
    h.push(get(99, "x", "never", 101, 102));
    const r = checkOperations(kvModel, h, { maxSteps: 500 });
    assert.equal(r.verdict, "unknown");
    assert.ok(r.steps > 500);
  });

  it("the memoisation keeps a wide but legal history cheap", () => {
    const h: KvOperation[] = [];
    for (let i = 0; i < 40; i++) h.push(put(i, "x", String(i % 3), 1, 100));
    h.push(get(99, "x", "2", 101, 102));
    const r = checkOperations(kvModel, h, { maxSteps: 200_000 });
    assert.equal(r.verdict, "ok");
  });

  it("rejects malformed operations", () => {
    assert.throws(() => checkOperations(kvModel, [put(1, "x", "a", 5, 4)]), /returns/);
  });

  it("works with any model given init, step and key (a counter)", () => {
    const counter: Model<number, "inc" | "read", number> = {
      init: () => 0,
      step: (s, input, output) => (input === "inc" ? [true, s + 1] : [output === undefined || output === s, s]),
      key: (s) => String(s),
    };
    const ok: Operation<"inc" | "read", number>[] = [
      { clientId: 1, input: "inc", call: 1, ret: 5, output: 0 },
      { clientId: 2, input: "read", call: 2, ret: 3, output: 1 },
    ];
    const bad: Operation<"inc" | "read", number>[] = [
      { clientId: 1, input: "inc", call: 1, ret: 2, output: 0 },
      { clientId: 2, input: "read", call: 3, ret: 4, output: 0 },
    ];
    assert.equal(checkOperations(counter, ok).verdict, "ok");
    assert.equal(checkOperations(counter, bad).verdict, "illegal");
  });
});
