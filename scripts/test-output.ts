/**
 * Reading the three runtimes' test output for `npm test`'s summary (scripts/test-all.ts): which tests
 * failed, and why. CI logs are often read from the end, and a failure's message may be thousands of lines
 * above it (a lane's output, a poll's node logs), so the summary repeats both.
 */

/** `s` without ANSI colour codes (Deno and Bun colour their output even into a pipe). */
export function plain(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\x1b\[[0-9;]*m/g, "");
}

/**
 * The lines of a runtime's output that name a failed test: Node's spec reporter marks them `✖` (and names
 * the file in `test at file:line`), Bun prints `(fail) suite > test`, Deno prints `name => ./file:line`
 * under its ERRORS heading and `name ... FAILED`. At most 40, each once.
 */
export function failureLines(runtime: "node" | "bun" | "deno", out: string): string[] {
  const lines = plain(out).split("\n");
  let picked: string[];
  if (runtime === "node") picked = lines.filter((l) => (/^\s*✖ /.test(l) && !/^\s*✖ failing tests:/.test(l)) || /^test at /.test(l));
  else if (runtime === "bun") picked = lines.filter((l) => /^\(fail\) /.test(l));
  else picked = lines.filter((l) => / => \S+:\d+:\d+$/.test(l) || / \.\.\. FAILED/.test(l));
  return [...new Set(picked.map((l) => l.trim()))].slice(0, 40);
}

/** The first line of a thrown error as the three runtimes print it: `Error: ...`, `AssertionError [ERR_ASSERTION]: ...`, Bun's and Deno's `error: ...`. */
const ERROR_START = /^\s*(?:error: |(?:[A-Z]\w*)?Error(?: \[[A-Z_]+\])?: )/;
/** Where an error's message ends: a stack frame, the assertion's property dump, Bun's source excerpt or `(fail)` line, Deno's next heading. */
const ERROR_END = /^\s*(?:at |generatedMessage|code: '|\(fail\) |\(pass\) |\d+ \| | ?FAILURES ?$)/;
/** The caret under Deno's source excerpt: the line above it is source, not message. */
const CARET = /^\s*\^\s*$/;

/**
 * Why tests failed: each thrown error's message as printed in `out` (its first line and up to
 * `maxLines` - 1 more: an assertion's diff, the start of a poll's node logs), each line cut at 200
 * characters, each distinct message once (Node prints every failure twice), at most `maxBlocks`. Deno's
 * closing `error: Test failed` is not a message.
 */
export function errorMessages(out: string, maxBlocks = 12, maxLines = 8): string[][] {
  const lines = plain(out).split("\n");
  const blocks: string[][] = [];
  const seen = new Set<string>();
  for (let i = 0; i < lines.length && blocks.length < maxBlocks; i++) {
    if (!ERROR_START.test(lines[i]!) || /^\s*error: Test failed\s*$/.test(lines[i]!)) continue;
    const indent = /^\s*/.exec(lines[i]!)![0].length;
    const block: string[] = [];
    for (let j = i; j < lines.length && block.length < maxLines; j++) {
      const line = lines[j]!;
      if (j > i && (ERROR_END.test(line) || ERROR_START.test(line))) break;
      if (CARET.test(line)) {
        block.pop();
        break;
      }
      block.push(line.slice(Math.min(indent, /^\s*/.exec(line)![0].length)).trimEnd().slice(0, 200));
    }
    while (block.length > 1 && block[block.length - 1] === "") block.pop();
    const key = block.join("\n");
    if (seen.has(key)) continue;
    seen.add(key);
    blocks.push(block);
  }
  return blocks;
}
