/**
 * `edgekv lease keepalive ID` renews until interrupted or until the lease is gone (etcdctl `lease
 * keep-alive`), `--once` renews once: runCli in-process against the API served on 127.0.0.1 (real fetch),
 * and the CLI as a real process of the running runtime stopped by SIGTERM. The stub service's lease TTLs
 * never run down, so "gone" is a revoke.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { currentRuntime } from "../../runtime-adapters/runtime.ts";
import { runCli } from "../../src/cli/main.ts";
import { StubKvService } from "./api-stub-service.ts";
import { within } from "../helpers/within.ts";
import { servedCli } from "../helpers/cli.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits (bounded by `ms`) until `ok()` holds. */
async function until(ok: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok() && Date.now() < deadline) await sleep(20);
}

describe("cli: lease keepalive against a served API", () => {
  const service = new StubKvService();
  const served = servedCli(service);

  /** Starts runCli; `out`/`err` fill as it prints, `code` resolves with its exit code. */
  const start = (argv: string[], signal?: AbortSignal) => {
    const out: string[] = [];
    const err: string[] = [];
    const code = runCli(["--endpoints", served.url(), ...argv], {
      out: (l) => out.push(l),
      err: (l) => err.push(l),
      env: {},
      readFile: async () => "",
      readFileBytes: async () => new Uint8Array(0),
      readStdin: async () => "",
      readStdinBytes: async () => new Uint8Array(0),
      ...(signal ? { signal } : {}),
    });
    return { out, err, code };
  };
  const grant = async (ttlSeconds: number) => String((await service.leaseGrant({ ttlSeconds })).id);

  it("renews at a third of the TTL until the lease is revoked, then exits 1 with lease_not_found", async () => {
    const id = await grant(1);
    const t0 = Date.now();
    const run = start(["lease", "keepalive", id]);
    await until(() => run.out.length >= 3, 10_000);
    const elapsedMs = Date.now() - t0;
    assert.deepEqual(run.out.slice(0, 3), [`lease ${id} kept alive, TTL 1s`, `lease ${id} kept alive, TTL 1s`, `lease ${id} kept alive, TTL 1s`]);
    // Three renewals are two pauses of ~333 ms: not one call after another, and well inside the TTL.
    assert.ok(elapsedMs >= 600, `three renewals after ${elapsedMs} ms`);
    await service.leaseRevoke(Number(id));
    const code = await within(run.code, 10_000, "still renewing");
    assert.equal(code, 1);
    assert.match(run.err.at(-1) ?? "", /^error: lease_not_found: /);
  });

  it("stops with exit 0 when interrupted (Ctrl-C), printing one JSON document per renewal with --json", async () => {
    const id = await grant(1);
    const ac = new AbortController();
    const run = start(["--json", "lease", "keepalive", id], ac.signal);
    await until(() => run.out.length >= 2, 10_000);
    ac.abort();
    const code = await within(run.code, 10_000, "still renewing");
    assert.equal(code, 0);
    assert.ok(run.out.length >= 2);
    for (const line of run.out) assert.deepEqual(JSON.parse(line), { id, ttl: 1, grantedTtl: 1 });
    assert.deepEqual(run.err, []);
  });

  it("--once renews once and exits 0; a missing lease exits 1 at once; --once elsewhere is a usage error", async () => {
    const id = await grant(5);
    const once = start(["lease", "keepalive", id, "--once"]);
    assert.equal(await once.code, 0);
    assert.deepEqual(once.out, [`lease ${id} kept alive, TTL 5s`]);
    const missing = start(["lease", "keepalive", "424242"]);
    assert.equal(await missing.code, 1);
    assert.deepEqual(missing.out, []);
    assert.match(missing.err[0], /^error: lease_not_found: /);
    // A malformed id is a usage error before any endpoint is tried, for every subcommand taking an ID.
    for (const [sub, bad] of [["keepalive", "abc"], ["revoke", "x1"], ["ttl", "0"], ["keepalive", "1.5"], ["revoke", "0x10"]]) {
      const r = start(["lease", sub, bad]);
      assert.equal(await r.code, 2, `${sub} ${bad}`);
      assert.match(r.err[0], /ID must be a positive decimal integer/, `${sub} ${bad}`);
    }
    const misuse = start(["lease", "ttl", id, "--once"]);
    assert.equal(await misuse.code, 2);
    assert.match(misuse.err[0], /--once applies to lease keepalive only/);
    const help = start(["lease", "--help"]);
    assert.equal(await help.code, 0);
    assert.match(help.out.join("\n"), /keepalive ID \[--once\][\s\S]*every third of its TTL/);
  });

  /** The CLI as a process of the running runtime (Node: bin/edgekv.mjs registers tsx itself). */
  const cliProcess = served.spawn;
  // Deno's child_process reports a child it signalled as killed by the signal even when it exited with a code.
  const isDenoParent = (globalThis as { Deno?: unknown }).Deno !== undefined;

  for (const [name, signals] of [["SIGTERM", ["SIGTERM"]], ["a doubled SIGINT (npx)", ["SIGINT", "SIGINT"]]] as const) {
    it(`as a real process on ${currentRuntime()}: renews until ${name}, then exits 0`, async () => {
      const id = await grant(1);
      const p = cliProcess(["--endpoints", served.url(), "lease", "keepalive", id]);
      const lines = () => p.out().split("\n").filter(Boolean);
      await until(() => lines().length >= 2 || p.child.exitCode !== null, 60_000);
      assert.equal(lines().slice(0, 2).join("|"), `lease ${id} kept alive, TTL 1s|lease ${id} kept alive, TTL 1s`, p.err());
      for (const sig of signals) {
        p.signal(sig);
        await sleep(50);
      }
      const code = await within(p.exited, 10_000, "still running");
      assert.ok(code === "0" || (isDenoParent && code === `signal ${signals[0]}`), `exit ${code}: ${p.err()}`);
      assert.equal(p.err(), "");
    });
  }

  it(`as a real process on ${currentRuntime()}: a reader that goes away ends it quietly with status 141 (| head -1)`, async () => {
    const id = await grant(1);
    const p = cliProcess(["--endpoints", served.url(), "lease", "keepalive", id]);
    await until(() => p.out().includes("kept alive") || p.child.exitCode !== null, 60_000);
    p.child.stdout!.destroy(); // the pipe's read end closes, as `head -1` does after its line
    const code = await within(p.exited, 10_000, "still running");
    assert.ok(code === "141" || code === "signal SIGPIPE", `exit ${code}: ${p.err()}`);
    assert.doesNotMatch(p.err(), /EPIPE|Error/);
  });

  it(`as a real process on ${currentRuntime()}: Ctrl-C cuts off a command that is still waiting (exit 130)`, async () => {
    // A client port that accepts and never answers: the get waits for its 60 s deadline unless interrupted.
    const net = await import("node:net");
    const held: import("node:net").Socket[] = [];
    const silent = net.createServer((s) => void held.push(s));
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", () => r()));
    try {
      const url = `http://127.0.0.1:${(silent.address() as { port: number }).port}`;
      const p = cliProcess(["--endpoints", url, "--timeout-ms", "60000", "get", "k"]);
      await until(() => held.length > 0 || p.child.exitCode !== null, 60_000);
      assert.equal(held.length > 0, true, `the CLI never connected: ${p.err()}`);
      p.signal("SIGINT");
      const code = await within(p.exited, 10_000, "still running");
      assert.ok(code === "130" || (isDenoParent && code === "signal SIGINT"), `exit ${code}: ${p.err()}`);
    } finally {
      for (const s of held) s.destroy();
      await new Promise<void>((r) => silent.close(() => r()));
    }
  });
});
