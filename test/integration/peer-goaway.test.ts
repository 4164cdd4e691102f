/**
 * A peer that sends GOAWAY while our client session has several streams open must cost a reconnect, not
 * the process. On Deno 2.9.6 the `node:http2` client runs event handlers inside nghttp2's frame processing
 * and frees the session in `destroy()`; our transport destroyed the session from its 'goaway' handler, so
 * nghttp2 went on with freed memory: SIGSEGV or `find_stream_on_goaway_func: Assertion
 * stream->closed_next == NULL` (a Deno node died so in a 10-minute nemesis run; denoland/deno issue 36788).
 * The client runs in a child process of the same runtime (fixtures/goaway-child.ts) so that a crash is a
 * failed assertion here. Without the deferred teardown (`destroyLater` in runtime-adapters/shared/
 * peer-http2.ts) the Deno child exits with SIGSEGV in the first round.
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import assert from "node:assert/strict";
import { describe, it } from "node:test";

const root = new URL("../..", import.meta.url).pathname;
const fixture = join(root, "test/integration/fixtures/goaway-child.ts");
const g = globalThis as { Bun?: unknown; Deno?: unknown };

function childCommand(): [string, string[]] {
  if (g.Deno !== undefined) return [join(root, "node_modules/.bin/deno"), ["run", "-A", "--no-check", fixture]];
  if (g.Bun !== undefined) return [join(root, "node_modules/.bin/bun"), [fixture]];
  return [process.execPath, ["--import", "tsx", fixture]];
}

/** Runs the child to completion (killed after `timeoutMs`), returning its exit status and output. */
function runChild(rounds: number, timeoutMs: number): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  const [cmd, args] = childCommand();
  const child = spawn(cmd, [...args, JSON.stringify({ rounds })], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
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
    const r = await runChild(8, 60_000);
    assert.equal(r.signal, null, `child died by ${r.signal}; stderr: ${r.stderr.slice(-2000)}`);
    assert.equal(r.code, 0, `child exit ${r.code}; stderr: ${r.stderr.slice(-2000)}`);
    const line = r.stdout.trim().split("\n").pop() ?? "";
    const result = JSON.parse(line) as { rounds: number; goaways: number; connects: number };
    assert.equal(result.goaways, 8);
    // One message stream accepted per session: the first connection and one reconnect after each GOAWAY.
    assert.equal(result.connects, 9);
  });
});
