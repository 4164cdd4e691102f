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

/** The first line of a thrown error as Bun and Deno print it: `error: ...`, `AssertionError: ...`, `Error: ...`. */
const ERROR_START = /^\s*(?:error: |(?:[A-Z]\w*)?Error(?: \[[A-Z_]+\])?: )/;
/**
 * Where an error's message ends: a stack frame, the assertion's property dump, Bun's source excerpt or
 * result line, Node's next failure in its `failing tests` list, Deno's next heading.
 */
const ERROR_END = /^\s*(?:at |generatedMessage|code: ['"]|\(fail\) |\(pass\) |\d+ \| | ?FAILURES ?$|test at |✖ )|^\S.* => \S+:\d+:\d+$/;
/** The caret under Deno's source excerpt: the line above it is source, not message. */
const CARET = /^\s*\^\s*$/;

/**
 * Why tests failed: each failure's message as `runtime` printed it in `out` (its first line and up to
 * `maxLines` - 1 more: an assertion's diff, the start of a poll's node logs), each line cut at 200
 * characters, each distinct message once, at most `maxBlocks`. Only the runtime's own failure reports are
 * read, never a passing test's log lines: Node's `✖ failing tests:` list (a timeout or a thrown string
 * is the quoted line under the test's name there), under Bun the error printed right before a `(fail)`
 * line, Deno's ERRORS section (without its closing `error: Test failed`).
 */
export function errorMessages(runtime: "node" | "bun" | "deno", out: string, maxBlocks = 12, maxLines = 8): string[][] {
  const lines = plain(out).split("\n");
  const starts: number[] = [];
  if (runtime === "node") {
    let inList = false;
    for (let i = 0; i < lines.length; i++) {
      if (/^✖ failing tests:/.test(lines[i]!)) inList = true;
      else if (inList && /^✖ /.test(lines[i]!) && i + 1 < lines.length) starts.push(i + 1);
      else if (inList && /^ℹ /.test(lines[i]!)) inList = false; // another test process's report begins
    }
  } else if (runtime === "bun") {
    for (let i = 0; i < lines.length; i++) {
      if (!/^\(fail\) /.test(lines[i]!)) continue;
      for (let j = i - 1; j >= 0 && !/^\((?:fail|pass)\) /.test(lines[j]!); j--) {
        if (ERROR_START.test(lines[j]!) && (j === 0 || !ERROR_START.test(lines[j - 1]!))) {
          starts.push(j);
          break;
        }
      }
    }
  } else {
    let inErrors = false;
    for (let i = 0; i < lines.length; i++) {
      if (/^ ERRORS $/.test(lines[i]!)) inErrors = true;
      else if (/^ FAILURES $/.test(lines[i]!)) inErrors = false;
      else if (inErrors && ERROR_START.test(lines[i]!)) starts.push(i);
    }
  }
  const blocks: string[][] = [];
  const seen = new Set<string>();
  for (const i of starts) {
    if (blocks.length >= maxBlocks) break;
    const indent = /^\s*/.exec(lines[i]!)![0].length;
    const block: string[] = [];
    for (let j = i; j < lines.length && block.length < maxLines; j++) {
      const line = lines[j]!;
      if (j > i && (ERROR_END.test(line) || (runtime !== "node" && ERROR_START.test(line)))) break;
      if (CARET.test(line)) {
        block.pop();
        break;
      }
      block.push(line.slice(Math.min(indent, /^\s*/.exec(line)![0].length)).trimEnd().slice(0, 200));
    }
    while (block.length > 1 && block[block.length - 1] === "") block.pop();
    const key = block.join("\n");
    if (block.length === 0 || key === "" || seen.has(key)) continue;
    seen.add(key);
    blocks.push(block);
  }
  return blocks;
}
