/**
 * Command line of the deterministic simulator (test/sim). Runs on Node (`npm run sim -- ...`), Bun
 * (`npx bun scripts/sim.ts ...`) and Deno (`npx deno run -A scripts/sim.ts ...`); the same seed gives the
 * same trace on all three.
 *
 *   --seeds A..B        run seeds A to B inclusive (default 1..100)
 *   --seed S            run one seed (same as --seeds S..S)
 *   --nodes N           cluster size (default: drawn per seed among 3, 5 and sometimes 7)
 *   --ticks T           safety-phase length in ticks (default: drawn per seed, 2000..4000)
 *   --bug NAME          turn on a deliberately wrong rule in every node: commit-prior-term, forget-vote,
 *                       stale-read (the run must then report violations)
 *   --silent-loss       lost messages are not reported to the sender (UDP-like; default: HTTP/2-like,
 *                       the sender's transport sees the failure and calls reportUnreachable)
 *   --persist MODE      sync | async: how every node persists a Ready (default: drawn per seed, 3 in 4
 *                       async = the node's fsync off the event loop; see docs/sim.md)
 *   --readys-in-flight N  with async persist, Readys a node may write before the oldest is durable
 *                       (RaftConfig.maxReadysInFlight; default: drawn per seed among 1, 2, 4)
 *   --trace             print the whole event trace of each seed (use with --seed)
 *   --quiet             no progress lines on stderr
 *   --help              this text
 *
 * Output: one line per failing seed (broken invariant, detail, the command to replay it), then
 * `sim: <count> seeds, <violations> violations`. Exit status 1 when violations > 0, 2 on bad usage.
 */
import type { RaftBug } from "../src/raft/types.ts";
import { runSimulation, type SimResult } from "../test/sim/sim.ts";

const HELP = `usage: npm run sim -- [--seeds A..B | --seed S] [--nodes N] [--ticks T] [--bug NAME] [--silent-loss] [--persist sync|async] [--readys-in-flight N] [--trace] [--quiet]

  --seeds A..B   run seeds A to B inclusive (default 1..100)
  --seed S       run one seed
  --nodes N      cluster size (default: drawn per seed among 3, 5, sometimes 7)
  --ticks T      safety-phase ticks (default: drawn per seed, 2000..4000); a liveness phase follows
  --bug NAME     enable a deliberately wrong rule in every node: commit-prior-term | forget-vote | stale-read
  --silent-loss  lost messages are not reported to the sender (UDP-like); default: reported, as HTTP/2 would
  --persist M    sync | async for every node (default: drawn per seed, 3 in 4 async: the fsync completes
                 later while the node keeps stepping messages, proposals and ticks)
  --readys-in-flight N  with async persist, Readys a node writes before the oldest is durable
                 (pipelined persist, RaftConfig.maxReadysInFlight; default: drawn per seed among 1, 2, 4)
  --trace        print every event of each seed (deterministic across Node, Bun and Deno)
  --quiet        no progress lines on stderr
  --help         show this text

Prints one line per failing seed with the replay command, then "sim: <count> seeds, <violations> violations".
Exit status: 0 no violations, 1 violations, 2 bad usage.`;

const BUGS: RaftBug[] = ["commit-prior-term", "forget-vote", "stale-read"];

interface Args {
  from: number;
  to: number;
  nodes?: number;
  ticks?: number;
  bug?: RaftBug;
  trace: boolean;
  quiet: boolean;
  silentLoss: boolean;
  persist?: "sync" | "async";
  readysInFlight?: number;
}

function usage(message: string): never {
  console.error(`sim: ${message}\n\n${HELP}`);
  exitWith(2);
}

function exitWith(code: number): never {
  const g = globalThis as { process?: { exit(c: number): never }; Deno?: { exit(c: number): never } };
  if (g.Deno) g.Deno.exit(code);
  if (g.process) g.process.exit(code);
  throw new Error(`exit ${code}`);
}

function int(flag: string, v: string | undefined): number {
  if (v === undefined || !/^\d+$/.test(v)) usage(`${flag} needs a non-negative integer, got ${v ?? "nothing"}`);
  return Number(v);
}

/** Parses the flags above; exits with status 2 on bad usage. */
export function parseArgs(argv: string[]): Args {
  const a: Args = { from: 1, to: 100, trace: false, quiet: false, silentLoss: false };
  for (let i = 0; i < argv.length; i++) {
    const f = argv[i];
    if (f === "--help" || f === "-h") {
      console.log(HELP);
      exitWith(0);
    } else if (f === "--seeds") {
      const m = /^(\d+)\.\.(\d+)$/.exec(argv[++i] ?? "");
      if (!m) usage("--seeds needs A..B");
      a.from = Number(m[1]);
      a.to = Number(m[2]);
      if (a.to < a.from) usage("--seeds A..B needs A <= B");
    } else if (f === "--seed") {
      a.from = a.to = int(f, argv[++i]);
    } else if (f === "--nodes") {
      a.nodes = int(f, argv[++i]);
      if (a.nodes < 1 || a.nodes > 9) usage("--nodes must be 1..9");
    } else if (f === "--ticks") {
      a.ticks = int(f, argv[++i]);
    } else if (f === "--bug") {
      const b = argv[++i] as RaftBug;
      if (!BUGS.includes(b)) usage(`--bug must be one of ${BUGS.join(", ")}`);
      a.bug = b;
    } else if (f === "--persist") {
      const p = argv[++i];
      if (p !== "sync" && p !== "async") usage(`--persist must be sync or async, got ${p ?? "nothing"}`);
      a.persist = p;
    } else if (f === "--readys-in-flight") {
      a.readysInFlight = int(f, argv[++i]);
      if (a.readysInFlight < 1 || a.readysInFlight > 64) usage("--readys-in-flight must be 1..64");
    } else if (f === "--trace") a.trace = true;
    else if (f === "--silent-loss") a.silentLoss = true;
    else if (f === "--quiet") a.quiet = true;
    else usage(`unknown argument ${f}`);
  }
  return a;
}

/** The exact command that replays `seed` with the same flags. */
export function replayCommand(a: Args, seed: number): string {
  let cmd = `npm run sim -- --seed ${seed}`;
  if (a.nodes !== undefined) cmd += ` --nodes ${a.nodes}`;
  if (a.ticks !== undefined) cmd += ` --ticks ${a.ticks}`;
  if (a.bug) cmd += ` --bug ${a.bug}`;
  if (a.silentLoss) cmd += " --silent-loss";
  if (a.persist) cmd += ` --persist ${a.persist}`;
  if (a.readysInFlight !== undefined) cmd += ` --readys-in-flight ${a.readysInFlight}`;
  return cmd + " --trace";
}

function firstLine(s: string): string {
  const i = s.indexOf("\n");
  return i < 0 ? s : s.slice(0, i) + " ...";
}

function main(): void {
  const g = globalThis as { process?: { argv: string[] }; Deno?: { args: string[] } };
  const argv = g.Deno ? g.Deno.args : (g.process?.argv.slice(2) ?? []);
  const a = parseArgs(argv);
  const count = a.to - a.from + 1;
  let violations = 0;
  let simTicks = 0;
  const t0 = Date.now();
  for (let seed = a.from; seed <= a.to; seed++) {
    const r: SimResult = runSimulation({ seed, nodes: a.nodes, ticks: a.ticks, bug: a.bug, trace: a.trace, silentLoss: a.silentLoss, persist: a.persist, readysInFlight: a.readysInFlight });
    simTicks += r.ticks;
    if (a.trace) {
      for (const line of r.trace) console.log(line);
      console.log(`result: ${r.violation ? `VIOLATION ${r.violation.invariant} at tick ${r.violation.tick}` : "ok"}; ops completed ${r.opsCompleted}, unknown ${r.opsUnknown}; ${JSON.stringify(r.stats)}`);
    }
    if (r.violation) {
      violations++;
      console.log(`seed ${seed} (${r.mix.nodes} nodes): ${r.violation.invariant} at tick ${r.violation.tick}: ${firstLine(r.violation.detail)}\n  replay: ${replayCommand(a, seed)}`);
      if (r.violation.detail.includes("\n") && count === 1) console.log(r.violation.detail);
    }
    const done = seed - a.from + 1;
    if (!a.quiet && !a.trace && (done % 100 === 0 || done === count) && count >= 100) {
      const wallS = (Date.now() - t0) / 1000;
      console.error(`sim: ${done}/${count} seeds, ${violations} violations, ${(simTicks * 0.05 / Math.max(wallS, 0.001)).toFixed(0)} simulated s per wall s (50 ms ticks)`);
    }
  }
  console.log(`sim: ${count} seeds, ${violations} violations`);
  exitWith(violations > 0 ? 1 : 0);
}

main();
