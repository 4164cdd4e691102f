/**
 * One wrk run of a scenario against edgekv or etcd with `scripts/bench/kv.lua` (`KV_API` picks the system,
 * `KV_SCENARIO` the workload): the same requests, in the same random order, as the anchors' scripts
 * (`wrk/<api>-<scenario>.lua` in ../shared/anchors), built in a fraction of their init time (kv.lua says how;
 * test/unit/bench-wrk-script.test.ts checks the bytes against the anchors' files). wrk -t2 (-t1 at one
 * connection), HTTP/1.1 keep-alive, `--latency`, bounded by -d and by a kill at duration + 30 s. The result
 * is the `WRK_JSON` line the anchors' common.lua prints (ms latencies, req/s).
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { repoRoot } from "../node-command.ts";
import { anchorsDir, track } from "./procs.ts";

/** Workloads of the bench; `get-serializable` is edgekv's `stale` and etcd's serializable range. */
export type Scenario = "put" | "get" | "get-serializable" | "mix";
/** The two systems under load. */
export type System = "edgekv" | "etcd";

/** What one wrk run measured: req/s (non-2xx excluded in okRps), latency percentiles in ms, error counts. */
export interface WrkResult {
  rps: number;
  okRps: number;
  p50: number;
  p99: number;
  p999: number;
  errors: number;
}

/** Path of the wrk Lua script of every scenario (KV_API and KV_SCENARIO select one). */
export const luaScript = join(repoRoot, "scripts", "bench", "kv.lua");

/** The environment kv.lua reads: key space, the anchors' wrk folder (common.lua), system and scenario. */
export function wrkEnv(system: System, scenario: Scenario, keyspace: number): NodeJS.ProcessEnv {
  return { ...process.env, KV_KEYSPACE: String(keyspace), KV_ANCHOR_WRK: join(anchorsDir, "wrk"), KV_API: system, KV_SCENARIO: scenario };
}

/**
 * Sets the mean think time (ms, 0 = closed loop) that kv.lua reads from KV_THINK_MS in every later wrk run
 * (`wrkEnv` passes process.env on): `--think-ms` of the bench and the probe.
 */
export function setThinkTime(ms: number): void {
  if (ms > 0) process.env.KV_THINK_MS = String(ms);
  else delete process.env.KV_THINK_MS;
}

/** Runs wrk once; throws when wrk fails or prints no WRK_JSON line. `durationS` in seconds. */
export function runWrk(system: System, scenario: Scenario, url: string, conns: number, durationS: number, keyspace: number): Promise<WrkResult> {
  const threads = conns === 1 ? 1 : 2;
  const args = [`-t${threads}`, `-c${conns}`, `-d${durationS}s`, "--timeout", "10s", "--latency", "-s", luaScript, url];
  const env = wrkEnv(system, scenario, keyspace);
  return new Promise((resolve, reject) => {
    const c = spawn("wrk", args, { env, stdio: ["ignore", "pipe", "pipe"] });
    track(c);
    let out = "";
    c.stdout.on("data", (d) => (out += d));
    c.stderr.on("data", (d) => (out += d));
    const timer = setTimeout(() => c.kill("SIGKILL"), (durationS + 30) * 1000);
    c.on("error", reject);
    c.on("exit", (code) => {
      clearTimeout(timer);
      const line = out.split("\n").find((l) => l.startsWith("WRK_JSON "));
      if (code !== 0 || !line) return reject(new Error(`wrk ${args.join(" ")} failed (${code}): ${out.slice(-1000)}`));
      const j = JSON.parse(line.slice(9)) as Record<string, number>;
      const errors = j.err_connect + j.err_read + j.err_write + j.err_status + j.err_timeout;
      resolve({ rps: j.rps, okRps: j.ok_rps, p50: j.p50_ms, p99: j.p99_ms, p999: j.p999_ms, errors });
    });
  });
}
