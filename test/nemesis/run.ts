/**
 * One nemesis run: start a real cluster behind link proxies, run the workload and a seeded schedule of
 * faults for `timeSec`, heal, then check (linearizable, nothing lost, nothing applied twice, back in
 * service within `recoveryMsMax`, replicas converge). Every run writes its folder: history.jsonl,
 * appends.json, faults.json, result.json, the replay command and the nodes' logs; a passing run's folder
 * is deleted unless `keep`. Used by scripts/nemesis.ts and test/nemesis/*.test.ts.
 */
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type DumpedKv, checkAppends, checkConvergence, checkLinearizable, dumpNodeOrWhy, type FaultKindUnavailability, formatByFault, unavailability } from "./checks.ts";
import { NemesisCluster, type NodeRuntime, sleep } from "./cluster.ts";
import { FAULT_KINDS, type FaultEvent, type FaultKind, restoreVoters, runFault } from "./faults.ts";
import { Rng } from "./rng.ts";
import { runWorkload } from "./workload.ts";

/** Options of {@link runNemesis}. */
export interface NemesisOptions {
  timeSec: number;
  seed: number;
  nodes: number;
  runtime: NodeRuntime | "mixed";
  clients?: number;
  /** Fault kinds to draw from (default: all). */
  faults?: readonly FaultKind[];
  /** Run folder (default: <tmpdir>/edgekv-nemesis/seed-<seed>-<time>). */
  dir?: string;
  /** Keep the folder even when the run passes. */
  keep?: boolean;
  /** Extra environment for the nodes (EDGEKV_UNSAFE_BUG for checker self-tests). */
  env?: Record<string, string>;
  /** Progress lines (default: stdout). */
  log?: (line: string) => void;
  /** Bound on the time from heal to the first successful write, ms (default 30000). */
  recoveryMsMax?: number;
  /** Register keys move to fresh ones every this many ms (workload.ts; default 10000). */
  keyWindowMs?: number;
  /** Quiet time before each fault, ms, drawn in [min, max] (default [1000, 2000]). */
  quietMs?: [min: number, max: number];
}

/** The outcome of a run. `ok` = linearizable, nothing lost or duplicated, recovered and converged. */
export interface NemesisResult {
  ok: boolean;
  ops: number;
  linearizable: "yes" | "no" | "unknown";
  /** Two replicas held different states at the same applied index (checks.ts `divergedReplicas`). */
  diverged: boolean;
  lost: number;
  duplicated: number;
  unavailableSec: number;
  unavailableByKind: Record<string, number>;
  /** Per fault kind injected: faults of that kind and mean/max seconds without service per fault (checks.ts `unavailability`). */
  unavailableByFault: Record<string, FaultKindUnavailability>;
  recoveryMs: number;
  faults: FaultEvent[];
  problems: string[];
  dir: string;
  /** The nemesis summary line of the command-line contract. */
  summary: string;
}

/** Runs one nemesis run; see the file comment. Throws only when the cluster cannot be started at all. */
export async function runNemesis(o: NemesisOptions): Promise<NemesisResult> {
  const log = o.log ?? ((s: string) => process.stdout.write(s + "\n"));
  const dir = o.dir ?? join(tmpdir(), "edgekv-nemesis", `seed-${o.seed}-${Date.now()}`);
  mkdirSync(dir, { recursive: true });
  const bug = o.env?.EDGEKV_UNSAFE_BUG ?? process.env.EDGEKV_UNSAFE_BUG;
  const replay =
    (bug ? `EDGEKV_UNSAFE_BUG=${bug} ` : "") +
    `npm run nemesis -- --time ${o.timeSec} --seed ${o.seed} --nodes ${o.nodes} --runtime ${o.runtime}` +
    (o.faults ? ` --faults ${o.faults.join(",")}` : "") +
    (o.quietMs ? ` --quiet-ms ${o.quietMs.join(",")}` : "") +
    (o.keyWindowMs ? ` --key-window-ms ${o.keyWindowMs}` : "") +
    (o.clients && o.clients !== 12 ? ` --clients ${o.clients}` : "");
  writeFileSync(join(dir, "replay.txt"), replay + "\n");
  const rng = new Rng(o.seed);
  const t0 = performance.now();
  const now = () => Math.round((performance.now() - t0) * 1000) / 1000;
  log(`nemesis: seed ${o.seed}, ${o.nodes} nodes on ${o.runtime}, ${o.timeSec} s, folder ${dir}`);
  if (bug) log(`nemesis: WARNING: nodes run with EDGEKV_UNSAFE_BUG=${bug} (a deliberately broken build): this run is expected to fail`);
  const cluster = await NemesisCluster.create({ nodes: o.nodes, runtime: o.runtime, dir, env: o.env });
  const problems: string[] = [];
  const faults: FaultEvent[] = [];
  let result: NemesisResult | undefined;
  try {
    await cluster.waitHealthy(90_000);
    await cluster.waitLeader(60_000);
    const startMs = now();
    const endAt = startMs + o.timeSec * 1000;
    let stopping = false;
    let current = "none";
    const counter = { ops: 0 };
    const workload = runWorkload(
      { urls: () => cluster.live().map((m) => ({ id: m.id, url: cluster.url(m) })) },
      { clients: o.clients ?? 12, registerKeys: 5, keyWindowMs: o.keyWindowMs, requestTimeoutMs: 3000, stop: () => stopping, rng: rng.fork(1000), now, maxOpsPerClient: 100_000, counter },
    );
    const progress = setInterval(() => log(`nemesis: ${Math.round((now() - startMs) / 1000)} s, ${counter.ops} ops, ${faults.length} faults so far, current fault: ${current}`), 5000);
    // The schedule: quiet 1-2 s (or quietMs), then one fault held 2-4 s, until the time is up.
    const kinds = o.faults ?? FAULT_KINDS;
    const faultRng = rng.fork(2000);
    for (let i = 0; i < 10_000 && now() < endAt; i++) {
      await sleep(faultRng.range(o.quietMs?.[0] ?? 1000, o.quietMs?.[1] ?? 2000));
      if (now() >= endAt) break;
      const kind = faultRng.pick(kinds);
      current = kind;
      faults.push(await runFault(cluster, kind, faultRng.fork(i), faultRng.range(2000, 4000), now, log));
      current = "none";
    }
    // Heal everything, then keep the workload running until a write succeeds again (the recovery bound).
    cluster.healLinks();
    for (const m of cluster.members) {
      cluster.resume(m);
      if (!m.proc) cluster.restart(m);
    }
    const healedAt = now();
    let recoveryMs = -1;
    const recoveryMsMax = o.recoveryMsMax ?? 30_000;
    for (let i = 0; i < 1000 && now() - healedAt < recoveryMsMax; i++) {
      const l = await cluster.leader();
      if (l) {
        const r = await fetch(`${cluster.url(l)}/v1/kv/nemesis-probe`, { method: "PUT", body: "x", signal: AbortSignal.timeout(2000) }).catch(() => undefined);
        if (r?.ok) {
          recoveryMs = now() - healedAt;
          break;
        }
      }
      await sleep(200);
    }
    // A membership cycle that failed half way may have left a founding member out: put it back, so the
    // convergence check compares every replica (the workload keeps running meanwhile).
    try {
      const restored = await restoreVoters(cluster, cluster.members.filter((m) => !m.spare).map((m) => m.id), log);
      if (restored) log(`nemesis: ${restored}`);
    } catch (e) {
      problems.push(`could not make every founding member a voter again: ${String((e as Error)?.message ?? e).split("\n")[0]}`);
    }
    stopping = true;
    clearInterval(progress);
    const { history, appends } = await workload;
    const endMs = now();
    if (recoveryMs < 0) problems.push(`cluster did not return to service within ${recoveryMsMax} ms after healing`);
    // Checks.
    const lin = checkLinearizable(history);
    log(`nemesis: checker: ${lin.keys} register keys, largest ${lin.largestKey} operations, ${lin.steps} search steps, ${lin.illegalKeys.length} not linearizable, ${lin.gaveUpKeys.length} gave up`);
    if (lin.verdict !== "ok") problems.push(`history ${lin.verdict === "illegal" ? "not linearizable" : "could not be checked"}: ${lin.message}`);
    const conv = await checkConvergence(cluster, 30_000);
    if (conv) problems.push(conv);
    // The final read is linearizable on the leader; a leader change or a read the new leader cannot
    // confirm yet is retried (bounded), and every failed attempt is reported with its answer.
    let finalDump: DumpedKv[] | undefined;
    const dumpErrors: string[] = [];
    for (let attempt = 0; attempt < 6 && !finalDump; attempt++) {
      if (attempt > 0) await sleep(2000);
      const leader = await cluster.leader();
      const r = leader ? await dumpNodeOrWhy(cluster.url(leader), "linearizable") : "no leader";
      if (typeof r === "string") dumpErrors.push(`${leader ?? "-"}: ${r}`);
      else finalDump = r;
    }
    if (dumpErrors.length > 0) log(`nemesis: final linearizable dump: ${dumpErrors.length} failed attempt(s): ${dumpErrors.join("; ")}`);
    let lost = 0;
    let duplicated = 0;
    if (!finalDump) problems.push(`final linearizable dump failed: ${dumpErrors.join("; ")}`);
    else {
      const a = checkAppends(appends, finalDump);
      lost = a.lost.length;
      duplicated = a.duplicated.length;
      if (lost) problems.push(`lost acknowledged appends: ${a.lost.slice(0, 20).join(", ")}`);
      if (duplicated) problems.push(`appends applied twice: ${a.duplicated.slice(0, 20).join(", ")}`);
    }
    for (const f of faults) if (f.error) problems.push(`fault ${f.kind} failed: ${f.error.split("\n")[0]}`);
    for (const crash of cluster.crashes) problems.push(`node crash: ${crash}`);
    const unav = unavailability(history, faults, startMs, endMs);
    const ops = history.length + appends.length;
    const linearizable = lin.verdict === "ok" ? "yes" : lin.verdict === "illegal" ? "no" : "unknown";
    const summary = `nemesis: ${ops} ops, linearizable: ${linearizable === "yes" ? "yes" : "no"}, lost: ${lost}, duplicated: ${duplicated}, unavailable: ${unav.totalSec}s`;
    // Fault failures (e.g. a refused membership call) are reported but do not make the history wrong.
    const ok = lin.verdict === "ok" && lost === 0 && duplicated === 0 && recoveryMs >= 0 && conv === undefined && finalDump !== undefined && cluster.crashes.length === 0;
    writeFileSync(join(dir, "history.jsonl"), history.map((h) => JSON.stringify(h)).join("\n") + "\n");
    writeFileSync(join(dir, "appends.json"), JSON.stringify(appends));
    writeFileSync(join(dir, "faults.json"), JSON.stringify(faults, null, 1));
    result = { ok, ops, linearizable, diverged: conv?.startsWith("replicas diverged") ?? false, lost, duplicated, unavailableSec: unav.totalSec, unavailableByKind: unav.byKind, unavailableByFault: unav.byFault, recoveryMs: Math.round(recoveryMs), faults, problems, dir, summary };
    writeFileSync(join(dir, "result.json"), JSON.stringify({ ...result, replay }, null, 1));
    const counts = { ok: 0, fail: 0, unknown: 0 };
    for (const h of history) counts[h.outcome]++;
    log(`nemesis: register ops ok ${counts.ok}, fail ${counts.fail}, unknown ${counts.unknown}; appends ${appends.length} (acked ${appends.filter((a) => a.outcome === "ok").length}); faults ${faults.map((f) => f.kind).join(",")}`);
    log(`nemesis: unavailable by fault kind (s): ${JSON.stringify(unav.byKind)}; recovery after heal ${Math.round(recoveryMs)} ms`);
    log(`nemesis: unavailable per fault (s): ${formatByFault(unav.byFault)}`);
    for (const p of problems) log(`nemesis: PROBLEM: ${p.slice(0, 4000)}`);
  } finally {
    await cluster.destroy();
  }
  if (!result) throw new Error("nemesis: run ended without a result");
  if (result.ok && !o.keep) rmSync(dir, { recursive: true, force: true });
  else log(`nemesis: run folder (history, node logs, replay seed): ${dir}\nnemesis: replay: ${replay}`);
  return result;
}
