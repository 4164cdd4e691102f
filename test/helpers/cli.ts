/**
 * Shared setup of the CLI tests (test/unit/cli*.test.ts), two ways of running `edgekv`:
 * - `inProcessCli`: `runCli` against the API app over the stub service, with injected fetch (no network),
 *   files, stdin and byte output;
 * - `servedCli`: the CLI as a real process of the running runtime (cliCommand) against the API over the stub
 *   served on 127.0.0.1, every process it started killed by PID after the suite, each run bounded to 60 s,
 *   or left running (`spawn`) for tests that signal it.
 */
import { after, before } from "node:test";
import { Buffer } from "node:buffer";
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import process from "node:process";
import { serveHttp, type HttpServerHandle } from "../../runtime-adapters/serve.ts";
import { currentRuntime } from "../../runtime-adapters/runtime.ts";
import { createApp } from "../../src/api/app.ts";
import { runCli } from "../../src/cli/main.ts";
import { StubKvService } from "../unit/api-stub-service.ts";

/** What one in-process CLI run printed: exit code, stdout lines, stderr lines. */
export interface CliRun {
  code: number;
  out: string[];
  err: string[];
}

/**
 * `runCli` in-process with `--endpoints http://n1.test` against `createApp(service)` (default: a new
 * StubKvService). `files` are what `--file` / `readFile` see (a missing path throws ENOENT), `setStdin`
 * sets what `-` reads, and `lastBytes()` is what the last run wrote through `writeBytes` (`get --raw`).
 */
export function inProcessCli(service: StubKvService = new StubKvService()) {
  const app = createApp(service);
  const files: Record<string, string | Uint8Array> = {};
  let stdin: string | Uint8Array = "";
  let bytes: number[] = [];
  const asBytes = (v: string | Uint8Array) => (typeof v === "string" ? new TextEncoder().encode(v) : v);
  const fileOf = (p: string): Uint8Array => {
    if (!(p in files)) throw new Error(`ENOENT ${p}`);
    return asBytes(files[p]);
  };
  const run = async (...argv: string[]): Promise<CliRun> => {
    const out: string[] = [];
    const err: string[] = [];
    bytes = [];
    const code = await runCli(["--endpoints", "http://n1.test", ...argv], {
      out: (l) => out.push(l),
      err: (l) => err.push(l),
      writeBytes: (b) => void bytes.push(...b),
      env: {},
      fetch: async (input, init) => app.request(String(input), init),
      readFile: async (p) => new TextDecoder().decode(fileOf(p)),
      readFileBytes: async (p) => fileOf(p),
      readStdin: async () => new TextDecoder().decode(asBytes(stdin)),
      readStdinBytes: async () => asBytes(stdin),
    });
    return { code, out, err };
  };
  return { service, run, files, setStdin: (s: string | Uint8Array) => (stdin = s), lastBytes: () => bytes };
}

/** The CLI launcher under the runtime running the test (Node: through tsx, as bin/edgekv.mjs does). */
export function cliCommand(): [string, string[]] {
  const bin = new URL("../../bin/edgekv.mjs", import.meta.url).pathname;
  const root = new URL("../..", import.meta.url).pathname;
  const rt = currentRuntime();
  if (rt === "bun") return [join(root, "node_modules/.bin/bun"), [bin]];
  if (rt === "deno") return [join(root, "node_modules/.bin/deno"), ["run", "-A", "--no-check", bin]];
  return [process.execPath, [bin]];
}

/** What a CLI process did: exit code (null when it did not exit within 60 s), stdout bytes, stderr text. */
export interface CliProcessRun {
  code: number | null;
  stdout: Uint8Array;
  stderr: string;
}

/** A CLI process left running: its output so far, its exit, and signalling it by PID. */
export interface CliProcess {
  child: ChildProcess;
  out(): string;
  err(): string;
  /** The exit code as a string, or `signal SIGNAME`. */
  exited: Promise<string>;
  /** Sends `sig` by PID (Deno's ChildProcess.kill() ignores calls after the first); no-op once exited. */
  signal(sig: NodeJS.Signals): void;
}

/**
 * Call inside a `describe`: serves the API over `service` on 127.0.0.1 (a free port) before the suite, and
 * after it kills every CLI process it started (by PID) and closes the server. `url()` is the API's base
 * URL; `run(args, stdin)` runs `edgekv --endpoints <url> ...args` as a real process with `stdin` piped in
 * and closed (no stdin when undefined), waiting at most 60 s; `spawn(argv)` starts `edgekv ...argv` (no
 * `--endpoints` added) and returns it running (`CliProcess`), for tests that signal it.
 */
export function servedCli(service: StubKvService = new StubKvService()) {
  let server: HttpServerHandle | undefined;
  const started: number[] = [];
  before(async () => {
    server = await serveHttp({ host: "127.0.0.1", port: 0, closeGraceMs: 100, fetch: createApp(service).fetch });
  });
  after(async () => {
    for (const pid of started) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already exited
      }
    }
    await server?.close();
  });
  const url = (): string => {
    if (!server) throw new Error("the API is not served yet (call url() inside a test)");
    return server.url;
  };
  const run = (args: string[], stdin?: Uint8Array): Promise<CliProcessRun> => {
    const [cmd, pre] = cliCommand();
    const child = spawn(cmd, [...pre, "--endpoints", url(), ...args], { stdio: [stdin ? "pipe" : "ignore", "pipe", "pipe"] });
    started.push(child.pid!);
    const out: Uint8Array[] = [];
    let stderr = "";
    child.stdout!.on("data", (d: Uint8Array) => void out.push(new Uint8Array(d)));
    child.stderr!.on("data", (d: Uint8Array) => (stderr += new TextDecoder().decode(d)));
    if (stdin) child.stdin!.end(stdin);
    const stdout = () => new Uint8Array(Buffer.concat(out));
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve({ code: null, stdout: stdout(), stderr: stderr + " <no exit within 60 s>" }), 60_000);
      child.on("exit", (code) => {
        clearTimeout(timer);
        // Let the pipes drain the last output.
        setTimeout(() => resolve({ code, stdout: stdout(), stderr }), 50);
      });
    });
  };
  const spawnCli = (argv: string[]): CliProcess => {
    const [cmd, pre] = cliCommand();
    const child = spawn(cmd, [...pre, ...argv], { stdio: ["ignore", "pipe", "pipe"] });
    started.push(child.pid!);
    let out = "";
    let err = "";
    child.stdout!.on("data", (d: Uint8Array) => (out += new TextDecoder().decode(d)));
    child.stderr!.on("data", (d: Uint8Array) => (err += new TextDecoder().decode(d)));
    const exited = new Promise<string>((r) => child.on("exit", (c, sig) => r(c === null ? `signal ${sig}` : String(c))));
    const signal = (sig: NodeJS.Signals) => {
      try {
        process.kill(child.pid!, sig);
      } catch {
        // already exited
      }
    };
    return { child, out: () => out, err: () => err, exited, signal };
  };
  return { service, url, run, spawn: spawnCli };
}
