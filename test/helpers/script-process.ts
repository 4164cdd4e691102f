/**
 * Running child processes in tests: the commands under scripts/ (test/integration/bench-scripts.test.ts,
 * cluster-script.test.ts) always under Node with tsx, as `npm run` / `npm start` start them, whichever
 * runtime runs the test file; node.ts and fixtures on the runtime under test (entry.test.ts,
 * stop-signals.test.ts) through `spawn` with that runtime's command. `ChildProcesses` remembers every
 * process a file started (and any other PIDs it learned of, such as the nodes a script spawned) so that
 * its `after` hook kills exactly those.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import process from "node:process";
import { pathToFileURL } from "node:url";
import { repoRoot } from "../../scripts/node-command.ts";
import { within } from "./within.ts";

/** True when the test runs on Node (not Bun, not Deno). */
export const onNode = (globalThis as { Bun?: unknown }).Bun === undefined && (globalThis as { Deno?: unknown }).Deno === undefined;

/** The Node binary: this process's on Node, else `node` from PATH. */
export const nodeBin = onNode ? process.execPath : "node";

/** tsx's loader as a file URL, for `node --import <it> script.ts`. */
export const tsxLoader = pathToFileURL(join(repoRoot, "node_modules/tsx/dist/loader.mjs")).href;

/** `describe`'s `skip` for suites that run in the Node run of `npm test` only: false on Node, else the reason. */
export function nodeRunOnly(why: string): false | string {
  return onNode ? false : `Node run only: ${why}`;
}

/** True while `pid` exists (signal 0 probes without signalling). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A started process: its stdout, stderr and both interleaved as received so far, and its end. */
export interface Running {
  child: ChildProcess;
  out(): string;
  err(): string;
  /** stdout and stderr in the order they arrived. */
  text(): string;
  /** The exit code as a string, or `signal SIGNAME`, once the process closed its pipes. */
  done: Promise<string>;
  /** The same at the process's exit (its pipes may stay open longer, held by a process it started). */
  exited: Promise<string>;
}

/** What `run` returns: exit code (or `signal X`, or "still running" when it was killed at the time bound) and output. */
export interface Done {
  code: string;
  out: string;
  err: string;
}

/** `r`'s exit status (exit code as a string, or `signal X`) within `ms`, else "still running" (the process keeps running). */
export function exitWithin(r: Running, ms: number): Promise<string> {
  return within(r.exited, ms, "still running");
}

/** The child processes of one test file; `killAll()` in its `after` stops what is still running. */
export class ChildProcesses {
  /** Processes spawned through `spawn` / `run` / `script`. */
  readonly started: ChildProcess[] = [];
  /** Other PIDs the test learned of and owns (e.g. nodes a script started); killed by `killAll` if alive. */
  readonly pids: number[] = [];

  /**
   * Spawns `cmd argv` in `cwd` (default: the repo root) with `env` added to this process's environment, stdin
   * ignored. A variable given as `undefined` in `env` is removed from the child's environment.
   */
  spawn(cmd: string, argv: string[], env: NodeJS.ProcessEnv = {}, cwd: string = repoRoot): Running {
    const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
    for (const [k, v] of Object.entries(env)) if (v === undefined) delete childEnv[k];
    const child = spawn(cmd, argv, { cwd, env: childEnv, stdio: ["ignore", "pipe", "pipe"] });
    this.started.push(child);
    let out = "";
    let err = "";
    let text = "";
    child.stdout!.on("data", (d: Uint8Array) => {
      out += String(d);
      text += String(d);
    });
    child.stderr!.on("data", (d: Uint8Array) => {
      err += String(d);
      text += String(d);
    });
    const ended = (event: "close" | "exit") => new Promise<string>((resolve) => child.on(event, (code, sig) => resolve(code === null ? `signal ${sig}` : String(code))));
    return { child, out: () => out, err: () => err, text: () => text, done: ended("close"), exited: ended("exit") };
  }

  /** Spawns `node --import tsx <repo>/<path> ...args` (as `npm run` starts a script). */
  script(path: string, args: string[], env: Record<string, string> = {}): Running {
    return this.spawn(nodeBin, ["--import", tsxLoader, join(repoRoot, path), ...args], env);
  }

  /** Runs `cmd argv` to its end; past `ms` it is killed with SIGKILL and the code is "still running". */
  async run(cmd: string, argv: string[], env: Record<string, string> = {}, ms = 60_000): Promise<Done> {
    const r = this.spawn(cmd, argv, env);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<"still running">((resolve) => {
      timer = setTimeout(() => {
        r.child.kill("SIGKILL");
        resolve("still running");
      }, ms);
    });
    const code = await Promise.race([r.done, timedOut]);
    clearTimeout(timer);
    return { code, out: r.out(), err: r.err() };
  }

  /** SIGKILLs every started process still running and every owned PID still alive. Never throws. */
  killAll(): void {
    for (const c of this.started) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    for (const pid of this.pids) {
      if (!alive(pid)) continue;
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // exited meanwhile
      }
    }
  }
}
