/**
 * `edgekv txn` never stores something other than what the user gave (user trial u1, items 1, 2, 4): a non-text
 * put value, a misspelled field, a missing field or `null` input is a usage error (exit 2) with the reason,
 * and nothing is written.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { inProcessCli } from "../helpers/cli.ts";

/** Runs `edgekv txn -` with `stdin` against the API over a new stub, then `get k`. */
async function txn(stdin: string) {
  const cli = inProcessCli();
  cli.setStdin(stdin);
  const r = await cli.run("txn", "-");
  const after = await cli.run("get", "k");
  return { ...r, stored: after.code === 0 ? after.out : null };
}

describe("cli: txn input is refused rather than reshaped", () => {
  it("a put value that is a JSON number, boolean or object: exit 2, says string, stores nothing", async () => {
    for (const v of ["5", "true", '{"a":1}']) {
      const r = await txn(`{"success":[{"op":"put","key":"k","value":${v}}]}`);
      assert.equal(r.code, 2, v);
      assert.deepEqual(r.out, []);
      assert.equal(r.err.length, 1);
      assert.match(r.err[0], /^error: usage: txn: success\[0\]\.value must be a string/);
      assert.equal(r.stored, null);
    }
  });

  it("a misspelled top-level field: exit 2 naming it", async () => {
    const r = await txn('{"sucess":[{"op":"put","key":"k","value":"v"}]}');
    assert.deepEqual([r.code, r.out, r.stored], [2, [], null]);
    assert.match(r.err[0], /unknown field "sucess"/);
  });

  it("a misspelled op field: exit 2 naming it", async () => {
    const r = await txn('{"success":[{"op":"put","key":"k","valu":"v"}]}');
    assert.deepEqual([r.code, r.stored], [2, null]);
    assert.match(r.err[0], /^error: usage: txn: /);
  });

  it("null input and a missing key: exit 2 with a clear message, not an internal error", async () => {
    const n = await txn("null");
    assert.equal(n.code, 2);
    assert.match(n.err[0], /^error: usage: txn: the request must be an object/);
    const m = await txn('{"success":[{"op":"put","value":"v"}]}');
    assert.equal(m.code, 2);
    assert.match(m.err[0], /success\[0\]\.key must be a string/);
    assert.ok(!m.err.join("\n").includes("internal"));
  });

  it("a valid txn still runs and stores the text exactly", async () => {
    const r = await txn('{"success":[{"op":"put","key":"k","value":"5"}]}');
    assert.deepEqual([r.code, r.stored], [0, ["5"]]);
  });
});
