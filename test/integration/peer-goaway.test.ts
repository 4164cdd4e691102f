/**
 * A peer that sends GOAWAY while our client session has several streams open must cost a reconnect, not
 * the process. On Deno 2.9.6 the `node:http2` client runs event handlers inside nghttp2's frame processing
 * and frees the session in `destroy()`; our transport destroyed the session from its 'goaway' handler, so
 * nghttp2 went on with freed memory: SIGSEGV or `find_stream_on_goaway_func: Assertion
 * stream->closed_next == NULL` (a Deno node died so in a 10-minute nemesis run; denoland/deno issue 36788).
 * The client runs in a child process of the same runtime (fixtures/goaway-child.ts) so that a crash is a
 * failed assertion here. Without the deferred teardown (`destroyLater` in runtime-adapters/shared/
 * peer-http2.ts) the Deno child exits with SIGSEGV in the first round.
 * The same holds for our `node:http2` peer server: a client that closes its session sends GOAWAY, and Deno's
 * runtime itself destroyed the server session from inside nghttp2's GOAWAY processing (fixtures/
 * goaway-server-child.ts; the rare Deno abort of transport-inprocess.test.ts). Fixed by deferring every
 * destroy() of our sessions on Deno (runtime-adapters/shared/http2-teardown.ts).
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import assert from "node:assert/strict";
import { describe, it } from "node:test";

const root = new URL("../..", import.meta.url).pathname;
const clientFixture = join(root, "test/integration/fixtures/goaway-child.ts");
const serverFixture = join(root, "test/integration/fixtures/goaway-server-child.ts");
const g = globalThis as { Bun?: unknown; Deno?: unknown };

function childCommand(fixture: string): [string, string[]] {
  if (g.Deno !== undefined) return [join(root, "node_modules/.bin/deno"), ["run", "-A", "--no-check", fixture]];
  if (g.Bun !== undefined) return [join(root, "node_modules/.bin/bun"), [fixture]];
  return [process.execPath, ["--import", "tsx", fixture]];
}

/** Runs a child to completion (SIGKILLed, this PID only, after `timeoutMs`), returning its exit status and output. */
function runChild(fixture: string, arg: object, timeoutMs: number): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  const [cmd, args] = childCommand(fixture);
  const child = spawn(cmd, [...args, JSON.stringify(arg)], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (s: string) => (stdout += s));
  child.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s.slice(0, 100_000)));
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  return new Promise((resolve) => {
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

describe("peer client: GOAWAY with open streams", () => {
  it("survives 8 GOAWAYs (NO_ERROR and ENHANCE_YOUR_CALM) refusing open forwards, reconnecting after each", async () => {
    const r = await runChild(clientFixture, { rounds: 8 }, 60_000);
    assert.equal(r.signal, null, `child died by ${r.signal}; stderr: ${r.stderr.slice(-2000)}`);
    assert.equal(r.code, 0, `child exit ${r.code}; stderr: ${r.stderr.slice(-2000)}`);
    const line = r.stdout.trim().split("\n").pop() ?? "";
    const result = JSON.parse(line) as { rounds: number; goaways: number; connects: number };
    assert.equal(result.goaways, 8);
    // One message stream accepted per session: the first connection and one reconnect after each GOAWAY.
    assert.equal(result.connects, 9);
  });
});

describe("peer server: GOAWAY from a client that closes its session", () => {
  it("survives 300 clients that each make one refused request and destroy their session, and 10 server restarts under open streams", async () => {
    // Without deferDestroyOnDeno (runtime-adapters/shared/http2-teardown.ts) a Deno child aborted in nghttp2
    // (find_stream_on_goaway_func) or died with SIGSEGV during the refusals in 12 of 15 runs (300-1000
    // refusals; an abort came within the first ~2 s or not at all). Three fresh children on Deno make a
    // pass without the fix unlikely (about 3%); Node and Bun, which never crashed so, run one.
    const children = g.Deno !== undefined ? 3 : 1;
    for (let child = 1; child <= children; child++) {
      const r = await runChild(serverFixture, { refusals: 300, drops: 10 }, 90_000);
      assert.equal(r.signal, null, `child ${child} died by ${r.signal}; stderr: ${r.stderr.slice(-2000)}`);
      assert.equal(r.code, 0, `child ${child} exit ${r.code}; stderr: ${r.stderr.slice(-2000)}`);
      const line = r.stdout.trim().split("\n").pop() ?? "";
      const result = JSON.parse(line) as { refusals: number; refused: number; drops: number; reconnects: number };
      assert.deepEqual(result, { refusals: 300, refused: 300, drops: 10, reconnects: 10 });
    }
  });
});
