/**
 * scripts/test-output.ts: the summary of `npm test` names each failed test and repeats why it failed, from
 * output shaped like each runtime's (Node's spec reporter, `bun test`, `deno test`; copied from real runs of
 * deliberately failing files, shortened). CI shows the end of the log; before this the reason was thousands
 * of lines up, out of sight. Only the runtime's own failure reports count: a passing test that logs a line
 * starting `Error:` is no reason.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { errorMessages, failureLines, plain } from "../../scripts/test-output.ts";

const NODE = `Error: this is only a log line
▶ sample suite
  ✔ logs an error-looking line and passes (207.4ms)
  ✖ equal fails with a message (17.4ms)
    AssertionError [ERR_ASSERTION]: a removed member disturbed the cluster

    1 !== 2

        at TestContext.<anonymous> (file:///x/test/zz.test.ts:4:51)
      generatedMessage: false,
      code: 'ERR_ASSERTION',
    }

  ✖ times out (52.3ms)
    'test timed out after 50ms'

ℹ tests 4
ℹ fail 2

✖ failing tests:

test at test/zz.test.ts:1:104
✖ equal fails with a message (17.4ms)
  AssertionError [ERR_ASSERTION]: a removed member disturbed the cluster

  1 !== 2

      at TestContext.<anonymous> (file:///x/test/zz.test.ts:4:51)
    generatedMessage: false,
    code: 'ERR_ASSERTION',
  }

test at test/zz.test.ts:1:208
✖ times out (52.3ms)
  'test timed out after 50ms'

test at test/zz.test.ts:1:279
✖ throws a plain error with logs (0.36ms)
  Error: timed out after 15000 ms waiting for n2 to answer
  n1.log: line one
  n1.log: line two
      at TestContext.<anonymous> (file:///x/test/zz.test.ts:6:57)
`;

const BUN = `test/zz.test.ts:
Error: this is only a log line
(pass) sample suite > logs an error-looking line and passes [44.93ms]
895 |   let error = Error(message);
                         ^
error: test timed out after 50ms
 code: "ERR_TEST_FAILURE"

(fail) sample suite > times out [53.51ms]
4 |   it("deep fails", () => { assert.deepEqual({ inline: 7 }, { inline: 8 }); });
                                      ^
AssertionError: Expected values to be strictly deep-equal:
+ actual - expected

  {
+   inline: 7
-   inline: 8
  }

 generatedMessage: true,
(fail) sample suite > deep fails [5.68ms]
`;

const DENO = `sample suite ...
  logs an error-looking line and passes ...
------- output -------
Error: this is only a log line
----- output end -----
  logs an error-looking line and passes ... ok (2ms)
\x1b[0m\x1b[1m\x1b[37m\x1b[41m ERRORS \x1b[0m

sample suite ... equal fails with a message => ext:deno_node/testing.ts:1:23191
\x1b[0m\x1b[1m\x1b[31merror\x1b[0m: AssertionError: a removed member disturbed the cluster

1 !== 2

  it("equal fails with a message", () => { assert.equal(1, 2, "a removed member disturbed the cluster"); });
                                                  ^
    at file:///x/test/zz.test.ts:4:51

sample suite ... throws a string => ext:deno_node/testing.ts:1:21231
error: "a string"

sample suite ... times out => ext:deno_node/testing.ts:1:21231
error: Error: test timed out after 50ms

 FAILURES 

sample suite ... equal fails with a message => ext:deno_node/testing.ts:1:23191

FAILED | 0 passed (1 step) | 1 failed (3 steps) (76ms)

\x1b[0m\x1b[1m\x1b[31merror\x1b[0m: Test failed
`;

describe("npm test's summary: failed tests and why (scripts/test-output.ts)", () => {
  it("names the failed tests in each runtime's words", () => {
    assert.deepEqual(failureLines("node", NODE), [
      "✖ equal fails with a message (17.4ms)",
      "✖ times out (52.3ms)",
      "test at test/zz.test.ts:1:104",
      "test at test/zz.test.ts:1:208",
      "test at test/zz.test.ts:1:279",
      "✖ throws a plain error with logs (0.36ms)",
    ]);
    assert.deepEqual(failureLines("bun", BUN), ["(fail) sample suite > times out [53.51ms]", "(fail) sample suite > deep fails [5.68ms]"]);
    assert.deepEqual(failureLines("deno", DENO), ["sample suite ... equal fails with a message => ext:deno_node/testing.ts:1:23191", "sample suite ... throws a string => ext:deno_node/testing.ts:1:21231", "sample suite ... times out => ext:deno_node/testing.ts:1:21231"]);
  });

  it("Node: the failing-tests list only; a timeout's quoted line; no stack or property dump; logs kept", () => {
    assert.deepEqual(errorMessages("node", NODE), [
      ["AssertionError [ERR_ASSERTION]: a removed member disturbed the cluster", "", "1 !== 2"],
      ["'test timed out after 50ms'"],
      ["Error: timed out after 15000 ms waiting for n2 to answer", "n1.log: line one", "n1.log: line two"],
    ]);
  });

  it("Bun: the error right before each (fail), its diff, not the source excerpt or property dump; a passing test's log line is no reason", () => {
    assert.deepEqual(errorMessages("bun", BUN), [
      ["error: test timed out after 50ms"],
      ["AssertionError: Expected values to be strictly deep-equal:", "+ actual - expected", "", "  {", "+   inline: 7", "-   inline: 8", "  }"],
    ]);
  });

  it("Deno: the ERRORS section only, colours removed, the source line above the caret dropped, `error: Test failed` skipped", () => {
    assert.deepEqual(errorMessages("deno", DENO), [["error: AssertionError: a removed member disturbed the cluster", "", "1 !== 2"], ['error: "a string"'], ["error: Error: test timed out after 50ms"]]);
    assert.equal(plain("\x1b[31mred\x1b[0m"), "red");
  });

  it("bounds: at most maxLines per message, 200 characters per line, maxBlocks messages", () => {
    const list = (n: number, body: string) => `✖ failing tests:\n\n${Array.from({ length: n }, (_, i) => `test at t.ts:${i}\n✖ t${i} (1ms)\n${body.replace("#", String(i))}\n`).join("\n")}`;
    const [block] = errorMessages("node", list(1, `  Error: ${"x".repeat(300)}\n${Array.from({ length: 20 }, (_, i) => `  log ${i}`).join("\n")}`), 12, 4);
    assert.deepEqual(block!.map((l) => l.length), [200, 5, 5, 5]);
    assert.equal(errorMessages("node", list(30, "  Error: failure #"), 5).length, 5);
    assert.deepEqual(errorMessages("node", "Error: a log line\nall good\n✔ passes (1ms)\n"), []);
  });
});
