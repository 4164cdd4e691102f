/**
 * scripts/test-output.ts: the summary of `npm test` names each failed test and repeats why it failed, from
 * output shaped like each runtime's (Node's spec reporter, `bun test`, `deno test`; copied from real runs of
 * a deliberately failing file, shortened). CI shows the end of the log; before this the reason was thousands
 * of lines up, out of sight.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { errorMessages, failureLines, plain } from "../../scripts/test-output.ts";

const NODE = `▶ sample suite
  ✖ equal fails with a message (17.4ms)
    AssertionError [ERR_ASSERTION]: a removed member disturbed the cluster

    1 !== 2

        at TestContext.<anonymous> (file:///x/test/zz.test.ts:4:51)
      generatedMessage: false,
      code: 'ERR_ASSERTION',
    }

  ✖ throws a plain error with logs (0.36ms)
    Error: timed out after 15000 ms waiting for n2 to answer
    n1.log: line one
    n1.log: line two
        at TestContext.<anonymous> (file:///x/test/zz.test.ts:6:57)

✖ failing tests:

test at test/zz.test.ts:1:104
✖ equal fails with a message (17.4ms)
  AssertionError [ERR_ASSERTION]: a removed member disturbed the cluster

  1 !== 2

      at TestContext.<anonymous> (file:///x/test/zz.test.ts:4:51)
`;

const BUN = `4 |   it("deep fails", () => { assert.deepEqual({ inline: 7 }, { inline: 8 }); });
                                      ^
AssertionError: Expected values to be strictly deep-equal:
+ actual - expected

  {
+   inline: 7
-   inline: 8
  }

 generatedMessage: true,
(fail) sample suite > deep fails [5.68ms]
(pass) sample suite > passes [0.23ms]
`;

const DENO = `\x1b[0m\x1b[1m\x1b[37m\x1b[41m ERRORS \x1b[0m

sample suite ... equal fails with a message => ext:deno_node/testing.ts:1:23191
\x1b[0m\x1b[1m\x1b[31merror\x1b[0m: AssertionError: a removed member disturbed the cluster

1 !== 2

  it("equal fails with a message", () => { assert.equal(1, 2, "a removed member disturbed the cluster"); });
                                                  ^
    at file:///x/test/zz.test.ts:4:51

 FAILURES 

sample suite ... equal fails with a message => ext:deno_node/testing.ts:1:23191

FAILED | 0 passed (1 step) | 1 failed (3 steps) (76ms)

\x1b[0m\x1b[1m\x1b[31merror\x1b[0m: Test failed
`;

describe("npm test's summary: failed tests and why (scripts/test-output.ts)", () => {
  it("names the failed tests in each runtime's words", () => {
    assert.deepEqual(failureLines("node", NODE), ["✖ equal fails with a message (17.4ms)", "✖ throws a plain error with logs (0.36ms)", "test at test/zz.test.ts:1:104"]);
    assert.deepEqual(failureLines("bun", BUN), ["(fail) sample suite > deep fails [5.68ms]"]);
    assert.deepEqual(failureLines("deno", DENO), ["sample suite ... equal fails with a message => ext:deno_node/testing.ts:1:23191"]);
  });

  it("Node: each message once (it prints every failure twice), without stack or property dump, logs kept", () => {
    assert.deepEqual(errorMessages(NODE), [
      ["AssertionError [ERR_ASSERTION]: a removed member disturbed the cluster", "", "1 !== 2"],
      ["Error: timed out after 15000 ms waiting for n2 to answer", "n1.log: line one", "n1.log: line two"],
    ]);
  });

  it("Bun: the assertion's diff, not the source excerpt above it or the property dump below", () => {
    assert.deepEqual(errorMessages(BUN), [["AssertionError: Expected values to be strictly deep-equal:", "+ actual - expected", "", "  {", "+   inline: 7", "-   inline: 8", "  }"]]);
  });

  it("Deno: colours removed, the source line above the caret dropped, the closing `error: Test failed` skipped", () => {
    assert.deepEqual(errorMessages(DENO), [["error: AssertionError: a removed member disturbed the cluster", "", "1 !== 2"]]);
    assert.equal(plain("\x1b[31mred\x1b[0m"), "red");
  });

  it("bounds: at most maxLines per message, 200 characters per line, maxBlocks messages", () => {
    const long = `Error: ${"x".repeat(300)}\n${Array.from({ length: 20 }, (_, i) => `log ${i}`).join("\n")}\n`;
    const [block] = errorMessages(long, 12, 4);
    assert.deepEqual(block!.map((l) => l.length), [200, 5, 5, 5]);
    const many = Array.from({ length: 30 }, (_, i) => `Error: failure ${i}`).join("\n");
    assert.equal(errorMessages(many, 5).length, 5);
    assert.deepEqual(errorMessages("all good\nok 1 - passes\n"), []);
  });
});
