/**
 * A member started with a wrong peer URL for one other member (a port nobody listens on, as a typo would
 * give), on real node processes of the runtime running the test: it logs that peer unreachable once at
 * warn with the URL and the error (not once per retry), `/healthz` stays 200, and while the unreachable
 * member leads, `/readyz` answers 503 `leader_unreachable` (it used to answer 200 although its acks never
 * arrived). The other members stay ready. Spawns exactly three processes and kills only their PIDs.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { currentRuntime } from "../../runtime-adapters/runtime.ts";
import { type MemberPlan, type NodeRuntime, loopbackUrl, memberArgs, nodeCommand, nodeEnv, repoRoot } from "../../scripts/node-command.ts";
import { fetchClusterView } from "../helpers/cluster-view.ts";
import { freePorts, sleep } from "../helpers/cluster.ts";
import { within } from "../helpers/within.ts";
import { pollUntil } from "../helpers/membership.ts";

const runtime = (process.env.EDGEKV_TEST_RUNTIME ?? currentRuntime()) as NodeRuntime;
const dir = mkdtempSync(join(tmpdir(), "edgekv-wrong-url-"));
const children: ChildProcess[] = [];
after(async () => {
  for (const child of children) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    const exited = new Promise<void>((r) => child.once("exit", () => r()));
    child.kill("SIGKILL");
    await within(exited, 10_000, undefined);
  }
  rmSync(dir, { recursive: true, force: true });
});

function logOf(id: string): string {
  try {
    return readFileSync(join(dir, `${id}.log`), "utf8");
  } catch {
    return "";
  }
}

function logs(): string {
  return ["n1", "n2", "n3"].map((id) => `----- ${id} -----\n${logOf(id).slice(-3000)}`).join("\n");
}

/** Polls `probe` (test/helpers/membership.ts pollUntil); a timeout shows the nodes' logs. */
function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  return pollUntil(what, probe, timeoutMs, logs);
}

async function readyz(url: string): Promise<{ status: number; reason: string }> {
  const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2000) });
  const body = (await res.json()) as { reason?: string };
  return { status: res.status, reason: body.reason ?? "" };
}

describe(`a wrong peer URL is told (${runtime} processes)`, () => {
  it("n3 given a dead port for n1 warns once, stays live, and is not ready while n1 leads", async () => {
    const ports = await freePorts(7);
    const plans: MemberPlan[] = ["n1", "n2", "n3"].map((id, i) => ({ id, runtime, clientPort: ports[2 * i]!, peerPort: ports[2 * i + 1]!, dataDir: join(dir, id) }));
    const deadUrl = loopbackUrl(ports[6]!);
    const wrongPeers = `n1=${deadUrl},n2=${loopbackUrl(plans[1]!.peerPort)},n3=${loopbackUrl(plans[2]!.peerPort)}`;
    const [cmd, base] = nodeCommand(runtime);
    for (const plan of plans) {
      // For n3 the later --peers wins: n1's URL points at a port nobody listens on.
      const extra = plan.id === "n3" ? ["--peers", wrongPeers] : [];
      const fd = openSync(join(dir, `${plan.id}.log`), "a");
      const child = spawn(cmd, [...base, ...memberArgs(plan, plans, { bootstrap: true, clusterId: "edgekv-wrong-url", extra })], {
        cwd: repoRoot,
        env: nodeEnv(runtime, { ...process.env, EDGEKV_CLUSTER_SECRET: "wrong-url-test-secret" }),
        stdio: ["ignore", fd, fd],
      });
      closeSync(fd);
      children.push(child);
    }
    const url = (id: string) => loopbackUrl(plans.find((p) => p.id === id)!.clientPort);
    // n2 and n3 agree on a leader. (When n3 wins, n1 never hears it: n3 cannot reach n1.)
    const leader = await until("a leader n2 and n3 agree on", async () => {
      const views = await Promise.all(["n2", "n3"].map((id) => fetchClusterView(url(id), 1000)));
      const l = views[0]?.leaderId;
      return l && views[1]?.leaderId === l ? l : undefined;
    }, 60_000);
    /** Asks (through n2) for leadership to move to `id` until n3 sees `id` lead. */
    const moveTo = (id: string) =>
      until(`${id} to lead`, async () => {
        const res = await fetch(`${url("n2")}/v1/cluster/leader`, { method: "POST", body: JSON.stringify({ id }), headers: { "content-type": "application/json" }, signal: AbortSignal.timeout(5000) });
        await res.body?.cancel();
        const v = await fetchClusterView(url("n3"), 1000);
        return v?.leaderId === id ? true : undefined;
      }, 20_000);
    // Make the member n3 cannot reach the leader. A leader n3 cannot hand over to n1 directly (its
    // TimeoutNow would go to the dead URL), so it goes through n2.
    if (leader === "n3") await moveTo("n2");
    if (leader !== "n1") await moveTo("n1");
    const r = await until("n3 to report not ready", async () => {
      const a = await readyz(url("n3"));
      return a.status === 503 ? a : undefined;
    }, 10_000);
    assert.equal(r.reason, "leader_unreachable", logs());
    assert.equal((await fetch(`${url("n3")}/healthz`, { signal: AbortSignal.timeout(2000) })).status, 200, "liveness must stay 200");
    for (const id of ["n1", "n2"]) assert.equal((await readyz(url(id))).status, 200, `${id} should be ready`);
    // Several reconnect attempts later (backoff from 1 s), still exactly one warn line naming URL and error.
    await sleep(3000);
    const lines = logOf("n3").split("\n").filter((l) => l.includes(`peer n1 (${deadUrl}) is unreachable`));
    assert.equal(lines.length, 1, `${lines.join("\n")}\n${logs()}`);
    assert.match(lines[0]!, /warn/);
    assert.match(lines[0]!, /ECONNREFUSED|refused|connect/i, lines[0]);
  });
});
