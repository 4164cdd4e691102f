/**
 * scripts/bench/kv.lua (the bench's wrk scenarios) builds, for every key, the same request bytes as the
 * anchors' scripts (../shared/anchors/wrk/<api>-<scenario>.lua, the shared method of measuring edgekv beside
 * etcd): run under wrk with KV_VERIFY=1, its init compares each request it built from the template with the
 * one built the anchors' way (wrk.format, base64 of the key byte by byte) and raises a Lua error at the first
 * difference, so wrk exits non-zero without the KV_VERIFY lines. Needs wrk and the anchors' folder; skipped
 * where either is missing. wrk connects to a local TCP server that never answers (1-second runs); the think
 * time (KV_THINK_MS, `--think-ms`) is checked against a local HTTP server that answers at once.
 */
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { createServer as createHttpServer } from "node:http";
import { join } from "node:path";
import { luaScript, wrkEnv, type Scenario, type System } from "../../scripts/bench/wrk.ts";
import { anchorsDir } from "../../scripts/bench/procs.ts";

const wrkMissing = spawnSync("wrk", ["-v"], { stdio: "ignore" }).error !== undefined;
const skip = wrkMissing ? "wrk is not installed" : !existsSync(join(anchorsDir, "wrk", "common.lua")) ? `no anchors at ${anchorsDir}` : false;
/** Keys per table: every key has the same 8-digit width at any size, so a part of the 100 000 proves the method. */
const KEYS = 20_000;

/** Runs wrk once with kv.lua (KV_VERIFY=1) for `system`/`scenario`; resolves to its exit status and output. */
function verify(system: System, scenario: Scenario, port: number): Promise<{ code: number | null; out: string }> {
  const env = { ...wrkEnv(system, scenario, KEYS), KV_VERIFY: "1" };
  const c = spawn("wrk", ["-t1", "-c1", "-d1s", "--timeout", "1s", "-s", luaScript, `http://127.0.0.1:${port}`], { env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  c.stdout.on("data", (d: Uint8Array) => (out += String(d)));
  c.stderr.on("data", (d: Uint8Array) => (out += String(d)));
  const killer = setTimeout(() => c.kill("SIGKILL"), 60_000);
  return new Promise((resolve) => {
    c.on("close", (code) => {
      clearTimeout(killer);
      resolve({ code, out });
    });
  });
}

describe("bench wrk script kv.lua", { skip }, () => {
  let server: Server;
  let port = 0;
  const sockets = new Set<Socket>();
  before(async () => {
    server = createServer((s) => {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => undefined);
      s.resume();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    port = (server.address() as { port: number }).port;
  });
  after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  });

  for (const system of ["edgekv", "etcd"] as const) {
    it(`${system}: get, put (mix) and get-serializable requests are the anchors' bytes`, async () => {
      const [mix, stale] = await Promise.all([verify(system, "mix", port), verify(system, "get-serializable", port)]);
      assert.equal(mix.code, 0, mix.out.slice(-1500));
      assert.match(mix.out, new RegExp(`KV_VERIFY ${system} get: ${KEYS} requests identical \\(built by template\\)`));
      assert.match(mix.out, new RegExp(`KV_VERIFY ${system} put: ${KEYS} requests identical \\(built by template\\)`));
      assert.equal(stale.code, 0, stale.out.slice(-1500));
      assert.match(stale.out, new RegExp(`KV_VERIFY ${system} get-serializable: ${KEYS} requests identical \\(built by template\\)`));
      assert.match(mix.out, /^WRK_JSON \{/m, "the summary line of the anchors' common.lua");
    });
  }

  it("KV_THINK_MS makes each connection wait before each request (an offered rate below saturation)", async () => {
    // A server that answers every request at once; one connection for 1 s, with and without a mean think
    // time of 100 ms: about 10 requests against hundreds or more.
    let served = 0;
    const http = createHttpServer((_req, res) => {
      served++;
      res.end("{}");
    });
    await new Promise<void>((r) => http.listen(0, "127.0.0.1", () => r()));
    const httpPort = (http.address() as { port: number }).port;
    const run = (think: string | undefined) => {
      const env = { ...wrkEnv("edgekv", "get", KEYS), ...(think ? { KV_THINK_MS: think } : {}) };
      const c = spawn("wrk", ["-t1", "-c1", "-d1s", "--timeout", "1s", "-s", luaScript, `http://127.0.0.1:${httpPort}`], { env, stdio: "ignore" });
      const killer = setTimeout(() => c.kill("SIGKILL"), 60_000);
      return new Promise<number | null>((resolve) => c.on("close", (code) => (clearTimeout(killer), resolve(code))));
    };
    try {
      served = 0;
      assert.equal(await run("100"), 0);
      const withThink = served;
      served = 0;
      assert.equal(await run(undefined), 0);
      const without = served;
      assert.ok(withThink >= 2 && withThink <= 40, `with a 100-ms think time: ${withThink} requests in 1 s`);
      assert.ok(without > 5 * withThink, `without: ${without} requests, with: ${withThink}`);
    } finally {
      http.closeAllConnections();
      await new Promise<void>((r) => http.close(() => r()));
    }
  });

  it("an unknown scenario stops wrk in init (no silent default)", async () => {
    const r = await verify("edgekv", "nope" as Scenario, port);
    assert.notEqual(r.code, 0);
    assert.match(r.out, /KV_SCENARIO must be/);
  });
});
