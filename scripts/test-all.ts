/**
 * The project's one test command (`npm test`): type-checks, then runs the single `node:test` suite under
 * Node (via tsx), Bun (`bun test`) and Deno (`deno test`), and prints one plain `N passed, N failed` line
 * per runtime plus a total line. Exit status is non-zero when any runtime fails or reports no tests.
 *
 * Usage: `node --import tsx scripts/test-all.ts [--runtime node|bun|deno]... [--no-typecheck] [--no-sim] [filter...]`
 * A filter is a substring of a test file path; without one every `test/**\/*.test.ts` file runs, and
 * before them the simulator runs seeds 1..300 (`npm run sim`; skipped with a filter or `--no-sim`).
 */
import { spawn } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";

const root = new URL("..", import.meta.url).pathname;

/** Simulator seeds every full `npm test` runs (about 1.5 s each on this machine). */
const SIM_SEEDS = "1..300";

const USAGE = `usage: npm test -- [--runtime node|bun|deno]... [--no-typecheck] [--no-sim] [file-filter...]

Type-checks (tsconfig.json and tsconfig.pure.json), runs the simulator (seeds ${SIM_SEEDS}) unless a filter or
--no-sim is given, then every test/**/*.test.ts file (or those whose path contains a filter) under Node
(tsx), Bun and Deno, and prints "N passed, N failed" per runtime and a total.

  --runtime R     node, bun or deno; repeat for several (default: all three)
  --no-typecheck  skip the type-check
  --no-sim        skip the simulator seeds
  file-filter     substring of a test file path, e.g. bench-scripts
  -h, --help      this text

Exit status: 0 all passed, 1 a failure (or no test matched), 2 bad arguments.`;

interface Result {
  runtime: string;
  passed: number;
  failed: number;
  exitCode: number;
  seconds: number;
  /** Lines naming the failed tests (and their files, where the runtime prints them), for the summary. */
  failures: string[];
}

/**
 * The lines of a runtime's output that name a failed test: Node's spec reporter marks them `✖` (and names the file in `test at file:line`), Bun
 * prints `(fail) suite > test`, Deno prints `name => ./file:line` under its ERRORS heading and
 * `name ... FAILED`. The summary repeats them because CI logs are often read from the end.
 */
function failureLines(runtime: string, out: string): string[] {
  const lines = plain(out).split("\n");
  let picked: string[];
  if (runtime === "node") picked = lines.filter((l) => (/^\s*✖ /.test(l) && !/^\s*✖ failing tests:/.test(l)) || /^test at /.test(l));
  else if (runtime === "bun") picked = lines.filter((l) => /^\(fail\) /.test(l));
  else picked = lines.filter((l) => / => \S+:\d+:\d+$/.test(l) || / \.\.\. FAILED/.test(l));
  return [...new Set(picked.map((l) => l.trim()))].slice(0, 40);
}

function listTests(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...listTests(p));
    else if (name.endsWith(".test.ts")) out.push(p);
  }
  return out;
}

function run(cmd: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: root, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    const onData = (chunk: Buffer) => {
      const s = chunk.toString();
      out += s;
      process.stdout.write(s);
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("close", (code) => resolve({ code: code ?? 1, out }));
  });
}

/** Strips ANSI colour codes so the summaries can be parsed. */
function plain(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\x1b\[[0-9;]*m/g, "");
}

function lastNumber(text: string, re: RegExp): number {
  let n = 0;
  for (const m of text.matchAll(re)) n = Number(m[1]);
  return n;
}

async function runtimeRun(runtime: string, files: string[]): Promise<Result> {
  const t0 = Date.now();
  const rel = files.map((f) => "./" + relative(root, f));
  let code: number;
  let passed = 0;
  let failed = 0;
  let all = "";
  if (runtime === "node") {
    const r = await run(process.execPath, ["--import", "tsx", "--test", "--test-reporter=spec", ...rel], { EDGEKV_TEST_RUNTIME: "node" });
    all = r.out;
    const o = plain(r.out);
    passed = lastNumber(o, /^ℹ pass (\d+)$/gm);
    failed = lastNumber(o, /^ℹ fail (\d+)$/gm);
    code = r.code;
  } else if (runtime === "bun") {
    const r = await run("npx", ["--no-install", "bun", "test", "--timeout", "180000", ...rel], { EDGEKV_TEST_RUNTIME: "bun" });
    all = r.out;
    const o = plain(r.out);
    passed = lastNumber(o, /^\s*(\d+) pass$/gm);
    failed = lastNumber(o, /^\s*(\d+) fail$/gm);
    code = r.code;
  } else if (runtime === "deno") {
    let r = await run("npx", ["--no-install", "deno", "test", "-A", "--no-check", ...rel], { EDGEKV_TEST_RUNTIME: "deno" });
    // Deno 2.9.6's node:http2 can abort the whole test process inside nghttp2 (assertion in
    // find_stream_on_goaway_func, denoland/deno#36788) — a runtime crash, not a test verdict. It was seen
    // once in a clean-clone CI run (transport-inprocess, 0 of 3 reruns). Rerun once, loudly; a second
    // abort fails the run.
    if (r.code === 134 && /find_stream_on_goaway_func/.test(r.out)) {
      console.log("\n!!! deno aborted inside nghttp2 (denoland/deno#36788, a runtime crash); rerunning the Deno suite once !!!\n");
      r = await run("npx", ["--no-install", "deno", "test", "-A", "--no-check", ...rel], { EDGEKV_TEST_RUNTIME: "deno" });
    }
    all = r.out;
    const o = plain(r.out);
    const m = [...o.matchAll(/\| (\d+) passed(?: \(\d+ steps?\))? \| (\d+) failed/g)].pop();
    if (m) {
      passed = Number(m[1]);
      failed = Number(m[2]);
    }
    code = r.code;
  } else {
    throw new Error(`unknown runtime ${runtime}`);
  }
  return { runtime, passed, failed, exitCode: code, seconds: (Date.now() - t0) / 1000, failures: failureLines(runtime, all) };
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes("--help") || argv.includes("-h")) {
    console.log(USAGE);
    return;
  }
  const runtimes: string[] = [];
  const filters: string[] = [];
  let typecheck = true;
  const usageError = (msg: string): never => {
    console.error(`${msg}\n${USAGE.split("\n")[0]}\n(--help prints every option)`);
    process.exit(2);
  };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--runtime") {
      const rt = argv[++i];
      if (rt !== "node" && rt !== "bun" && rt !== "deno") usageError(`--runtime must be node, bun or deno, got ${JSON.stringify(rt)}`);
      runtimes.push(rt);
    } else if (argv[i] === "--no-typecheck") typecheck = false;
    else if (argv[i] === "--no-sim") continue;
    // a filter is a path substring; an unknown option would otherwise become a filter that matches nothing
    else if (argv[i].startsWith("-")) usageError(`unknown option ${JSON.stringify(argv[i])}`);
    else filters.push(argv[i]);
  }
  if (runtimes.length === 0) runtimes.push("node", "bun", "deno");
  let files = listTests(join(root, "test"));
  if (filters.length) files = files.filter((f) => filters.some((x) => f.includes(x)));
  if (files.length === 0) {
    console.error("no test files matched");
    process.exit(1);
  }

  let bad = false;
  if (typecheck) {
    const tsc = join(root, "node_modules/typescript/bin/tsc");
    for (const project of ["tsconfig.json", "tsconfig.pure.json"]) {
      const r = await run(process.execPath, [tsc, "-p", project, "--noEmit"]);
      console.log(`typecheck ${project}: ${r.code === 0 ? "ok" : "FAILED"}`);
      if (r.code !== 0) bad = true;
    }
  }

  // The deterministic simulator over a few hundred seeds (issue #2: CI runs them on every push). Node only:
  // the same seed gives the same run on every runtime, and sim.test.ts runs seeds on all three.
  if (filters.length === 0 && !argv.includes("--no-sim")) {
    const r = await run(process.execPath, ["--import", "tsx", "scripts/sim.ts", "--seeds", SIM_SEEDS, "--quiet"]);
    console.log(`sim ${SIM_SEEDS}: ${r.code === 0 ? "ok" : "FAILED"}`);
    if (r.code !== 0) bad = true;
  }

  const results: Result[] = [];
  for (const rt of runtimes) {
    console.log(`\n===== ${rt}: ${files.length} test files =====`);
    results.push(await runtimeRun(rt, files));
  }
  console.log("\n===== summary =====");
  let tp = 0;
  let tf = 0;
  for (const r of results) {
    const ok = r.exitCode === 0 && r.failed === 0 && r.passed > 0;
    if (!ok) bad = true;
    tp += r.passed;
    tf += r.failed + (r.exitCode !== 0 && r.failed === 0 ? 1 : 0);
    console.log(`${r.runtime}: ${r.passed} passed, ${r.failed} failed`);
    if (r.exitCode !== 0 && r.failed === 0) console.log(`(${r.runtime} exited with status ${r.exitCode}; counted as one failure)`);
    console.log(`(${r.runtime} took ${r.seconds.toFixed(1)} s)`);
    for (const f of r.failures) console.log(`  failed on ${r.runtime}: ${f}`);
  }
  console.log(`${tp} passed, ${tf} failed`);
  process.exit(bad ? 1 : 0);
}

await main();
