/**
 * `edgekv get KEY --raw` writes the value's bytes exactly (no newline, no UTF-8 decoding), in-process and
 * through a real process of the running runtime against a served API (user trial u1, item 3).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import process from "node:process";
import { serveHttp, type HttpServerHandle } from "../../runtime-adapters/serve.ts";
import { currentRuntime } from "../../runtime-adapters/runtime.ts";
import { createApp } from "../../src/api/app.ts";
import { runCli } from "../../src/cli/main.ts";
import { StubKvService } from "./api-stub-service.ts";

/** Not valid UTF-8, ends without a newline: text output would change it. */
const BINARY = new Uint8Array([0, 255, 10, 0xc3, 0x28, 13, 0x80]);

describe("cli: get --raw in-process", () => {
  const app = createApp(new StubKvService());
  const run = async (argv: string[], stdin: Uint8Array, withBytes = true) => {
    const out: string[] = [];
    const err: string[] = [];
    const chunks: Uint8Array[] = [];
    const code = await runCli(["--endpoints", "http://n1.test", ...argv], {
      out: (l) => out.push(l),
      err: (l) => err.push(l),
      ...(withBytes ? { writeBytes: (b: Uint8Array) => void chunks.push(b.slice()) } : {}),
      env: {},
      fetch: async (input, init) => app.request(String(input), init),
      readFile: async () => "",
      readFileBytes: async () => new Uint8Array(0),
      readStdin: async () => "",
      readStdinBytes: async () => stdin,
    });
    return { code, out, err, bytes: chunks.flatMap((c) => [...c]) };
  };

  it("writes the stored bytes exactly and nothing else", async () => {
    assert.equal((await run(["put", "bin", "-"], BINARY)).code, 0);
    assert.deepEqual(await run(["get", "bin", "--raw"], new Uint8Array(0)), { code: 0, out: [], err: [], bytes: [...BINARY] });
  });

  it("--raw with --json is a usage error; an absent key is not_found (exit 1)", async () => {
    const both = await run(["get", "bin", "--raw", "--json"], new Uint8Array(0));
    assert.equal(both.code, 2);
    assert.match(both.err[0], /--raw and --json/);
    const absent = await run(["get", "nope", "--raw"], new Uint8Array(0));
    assert.deepEqual([absent.code, absent.bytes], [1, []]);
    assert.match(absent.err[0], /^error: not_found/);
  });

  it("--help shows --raw", async () => {
    const h = await run(["get", "--help"], new Uint8Array(0));
    assert.match(h.out.join("\n"), /--raw/);
  });
});

/** The CLI launcher under the runtime running the test (Node: through tsx, as bin/edgekv.mjs does). */
function cliCommand(): [string, string[]] {
  const bin = new URL("../../bin/edgekv.mjs", import.meta.url).pathname;
  const root = new URL("../..", import.meta.url).pathname;
  const rt = currentRuntime();
  if (rt === "bun") return [join(root, "node_modules/.bin/bun"), [bin]];
  if (rt === "deno") return [join(root, "node_modules/.bin/deno"), ["run", "-A", "--no-check", bin]];
  return [process.execPath, [bin]];
}

describe(`cli: get --raw in a real process on ${currentRuntime()}`, () => {
  const service = new StubKvService();
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

  it("stdout holds exactly the stored bytes", async () => {
    const put = await fetch(`${server!.url}/v1/kv/bin`, { method: "PUT", body: BINARY, headers: { "content-type": "application/octet-stream" } });
    assert.ok(put.ok, `put: ${put.status}`);
    const [cmd, pre] = cliCommand();
    const child = spawn(cmd, [...pre, "--endpoints", server!.url, "get", "bin", "--raw"], { stdio: ["ignore", "pipe", "pipe"] });
    started.push(child.pid!);
    const out: number[] = [];
    let stderr = "";
    child.stdout!.on("data", (d: Uint8Array) => out.push(...d));
    child.stderr!.on("data", (d: Uint8Array) => (stderr += new TextDecoder().decode(d)));
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => resolve(null), 60_000);
      child.on("exit", (c) => {
        clearTimeout(timer);
        setTimeout(() => resolve(c), 50);
      });
    });
    assert.deepEqual([code, stderr, out], [0, "", [...BINARY]]);
  });
});
