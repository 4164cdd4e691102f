/**
 * The nemesis checkers over a recorded run: linearizability of the register history (the shared
 * Wing–Gong checker of test/lin with the KV register model, one key at a time with a step budget per key), lost acknowledged appends,
 * doubly applied appends (a unique key whose version is above 1 was written twice), replica convergence
 * (identical stale dumps and revisions on every node) and unavailability (gaps without any successful
 * operation).
 */
import { checkOperations } from "../lin/checker.ts";
import { type KvInput, type KvOperation, type KvOutput, kvModel } from "../lin/kv-model.ts";
import { type NemesisCluster, clusterView, sleep } from "./cluster.ts";
import type { FaultEvent } from "./faults.ts";
import type { AppendRecord, HistoryRecord } from "./workload.ts";

/** Converts recorded operations to checker operations: "fail" is dropped (it never took effect). */
export function toOperations(history: HistoryRecord[]): KvOperation[] {
  const ops: KvOperation[] = [];
  for (const h of history) {
    if (h.outcome === "fail") continue;
    if (h.outcome === "unknown") {
      if (h.input.kind === "get") continue; // a read with no answer constrains nothing
      ops.push({ clientId: h.client, input: h.input as KvInput, call: h.call });
    } else ops.push({ clientId: h.client, input: h.input as KvInput, call: h.call, output: h.output as KvOutput, ret: h.ret });
  }
  return ops;
}

/** Per-key linearizability result of {@link checkLinearizable}. */
export interface LinearizabilityReport {
  /** "ok": every key linearizable; "illegal": some key proven not linearizable; "unknown": no key illegal but some gave up. */
  verdict: "ok" | "illegal" | "unknown";
  /** The first illegal key's failing operations, or the keys whose search gave up, or "linearizable". */
  message: string;
  /** Keys checked (register keys with at least one operation that took or may have taken effect). */
  keys: number;
  /** Keys proven not linearizable. */
  illegalKeys: string[];
  /** Keys whose search hit the step budget (each with its operation count): a failure, never a pass. */
  gaveUpKeys: Array<{ key: string; operations: number }>;
  /** Search steps over all keys. */
  steps: number;
  /** Operations in the largest key history. */
  largestKey: number;
}

/**
 * Linearizability of a history, one key at a time (linearizability is local: Herlihy & Wing 1990 §3.3;
 * the workload's key windows keep each key's history bounded). Each key gets its own budget of
 * `maxStepsPerKey` search steps; a key that exhausts it is reported in `gaveUpKeys` and makes the verdict
 * "unknown" (the run fails: an unchecked history is not a linearizable one).
 */
export function checkLinearizable(history: HistoryRecord[], maxStepsPerKey = 2_000_000): LinearizabilityReport {
  const parts = kvModel.partition!(toOperations(history));
  const illegalKeys: string[] = [];
  const gaveUpKeys: Array<{ key: string; operations: number }> = [];
  let firstIllegal = "";
  let steps = 0;
  let largestKey = 0;
  for (const part of parts) {
    const key = part[0].input.key;
    largestKey = Math.max(largestKey, part.length);
    const r = checkOperations(kvModel, part, { maxSteps: maxStepsPerKey });
    steps += r.steps;
    if (r.verdict === "illegal") {
      illegalKeys.push(key);
      if (!firstIllegal) firstIllegal = `key ${key}: ${r.message}`;
    } else if (r.verdict === "unknown") gaveUpKeys.push({ key, operations: part.length });
  }
  const base = { keys: parts.length, illegalKeys, gaveUpKeys, steps, largestKey };
  if (illegalKeys.length > 0) {
    const others = illegalKeys.length > 1 ? ` (${illegalKeys.length} keys not linearizable: ${illegalKeys.slice(0, 20).join(", ")})` : "";
    return { ...base, verdict: "illegal", message: firstIllegal + others };
  }
  if (gaveUpKeys.length > 0) {
    const list = gaveUpKeys.slice(0, 20).map((k) => `${k.key} (${k.operations} operations)`).join(", ");
    return { ...base, verdict: "unknown", message: `search gave up after ${maxStepsPerKey} steps on ${gaveUpKeys.length} of ${parts.length} keys: ${list}` };
  }
  return { ...base, verdict: "ok", message: `linearizable (${parts.length} keys, largest ${largestKey} operations, ${steps} steps)` };
}

/** One key of a node's dump. */
export interface DumpedKv {
  key: string;
  value: string;
  modRevision: number;
  version: number;
}

/** Every key of one node, read locally (`consistency=stale`), or undefined when it does not answer. */
export async function dumpNode(baseUrl: string, consistency = "stale"): Promise<DumpedKv[] | undefined> {
  const r = await dumpNodeOrWhy(baseUrl, consistency);
  return typeof r === "string" ? undefined : r;
}

/** Like {@link dumpNode}, but says why it failed (HTTP status and body start, or the error) instead of undefined. */
export async function dumpNodeOrWhy(baseUrl: string, consistency = "stale", timeoutMs = 10_000): Promise<DumpedKv[] | string> {
  try {
    const res = await fetch(`${baseUrl}/v1/kv?prefix=&consistency=${consistency}`, { signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) return `${res.status} ${(await res.text()).slice(0, 200)}`;
    const body = (await res.json()) as { kvs: Array<{ key: string; value: string; modRevision: number; version: number }> };
    return body.kvs.map((kv) => ({ key: kv.key, value: atob(kv.value), modRevision: Number(kv.modRevision), version: Number(kv.version) }));
  } catch (e) {
    return String((e as Error)?.message ?? e).slice(0, 200);
  }
}

/** Lost and duplicated appends against a final dump. */
export function checkAppends(appends: AppendRecord[], dump: DumpedKv[]): { lost: string[]; duplicated: string[] } {
  const byKey = new Map(dump.map((d) => [d.key, d]));
  const lost: string[] = [];
  for (const a of appends) if (a.outcome === "ok" && byKey.get(a.key)?.value !== a.value) lost.push(a.key);
  const duplicated = dump.filter((d) => d.key.startsWith("u/") && d.version > 1).map((d) => `${d.key} (version ${d.version})`);
  return { lost, duplicated };
}

/**
 * Two members that report the same applied index with different store revisions hold different states
 * for the same log prefix: the state machine is deterministic, so that is a divergence (a safety
 * violation), not slowness. Each view is read in one synchronous call on its node, so its pair is
 * consistent. Returns what diverged, or undefined.
 */
export function divergedReplicas(views: Array<{ id: string; revision?: number; appliedIndex?: number } | undefined>): string | undefined {
  for (let i = 0; i < views.length; i++) {
    for (let j = i + 1; j < views.length; j++) {
      const a = views[i];
      const b = views[j];
      if (!a || !b || a.appliedIndex === undefined || a.revision === undefined || b.revision === undefined) continue;
      if (a.appliedIndex === b.appliedIndex && a.revision !== b.revision) {
        return `replicas diverged: ${a.id} and ${b.id} both applied index ${a.appliedIndex} but are at revisions ${a.revision} and ${b.revision}`;
      }
    }
  }
  return undefined;
}

/**
 * Waits (bounded by `timeoutMs`) until every member reports the same revision and applied index and their
 * stale dumps are identical. Returns undefined on success, else what differed; a divergence
 * ({@link divergedReplicas}) is returned at once.
 */
export async function checkConvergence(c: NemesisCluster, timeoutMs: number): Promise<string | undefined> {
  const deadline = performance.now() + timeoutMs;
  let why = "";
  for (let i = 0; i < 1000 && performance.now() < deadline; i++) {
    const views = await Promise.all(c.members.map((m) => clusterView(c.url(m))));
    const revs = views.map((v, j) => `${c.members[j].id}: rev ${v?.revision ?? "?"} applied ${v?.appliedIndex ?? "?"}`);
    const diverged = divergedReplicas(views.map((v, j) => (v ? { id: c.members[j].id, revision: v.revision, appliedIndex: v.appliedIndex } : undefined)));
    if (diverged) return `${diverged} (${revs.join("; ")})`;
    if (views.every((v) => v && v.revision === views[0]!.revision && v.appliedIndex === views[0]!.appliedIndex)) {
      const dumps = await Promise.all(c.members.map((m) => dumpNode(c.url(m))));
      const texts = dumps.map((d) => JSON.stringify(d));
      if (texts.every((t) => t === texts[0] && t !== undefined)) return undefined;
      why = `same revision ${views[0]!.revision} but dumps differ: ` + texts.map((t, j) => `${c.members[j].id} ${t?.length ?? "none"} chars`).join(", ");
    } else why = revs.join("; ");
    await sleep(250);
  }
  return `replicas did not converge within ${timeoutMs} ms: ${why}`;
}

/** Unavailability of one fault kind over a run, per fault of that kind ({@link unavailability}). Seconds. */
export interface FaultKindUnavailability {
  /** Faults of this kind injected in the run (those with no gap count as 0 s). */
  faults: number;
  /** Sum of the gaps attributed to faults of this kind, s. */
  totalSec: number;
  /** `totalSec / faults`: the mean time without service per fault of this kind, s. */
  meanSec: number;
  /** The largest time without service attributed to one fault of this kind, s. */
  maxSec: number;
}

/**
 * Unavailability: every gap longer than `gapMs` between consecutive successful operations (any client),
 * summed, and attributed to the fault active when the gap began ("none" otherwise). Seconds.
 * `byKind` sums the gaps per fault kind; `byFault` gives, for every kind injected, the number of faults and
 * the mean and max seconds without service per fault (a fault whose gaps sum to 0 counts in the mean): the
 * "seconds without service after a leader kill, a partition, a pause" of issue #5. A gap is measured from
 * the last success before it to the first success after it, so it includes up to `gapMs` before the fault.
 */
export function unavailability(
  history: HistoryRecord[],
  faults: FaultEvent[],
  startMs: number,
  endMs: number,
  gapMs = 1000,
): { totalSec: number; byKind: Record<string, number>; byFault: Record<string, FaultKindUnavailability> } {
  const times = history.filter((h) => h.outcome === "ok").map((h) => h.ret!).sort((a, b) => a - b);
  const points = [startMs, ...times, endMs];
  const byKind: Record<string, number> = {};
  const perEventMs = faults.map(() => 0);
  let total = 0;
  for (let i = 1; i < points.length; i++) {
    const gap = points[i] - points[i - 1];
    if (gap <= gapMs) continue;
    total += gap;
    const at = faults.findIndex((e) => e.start <= points[i - 1] + gapMs && points[i - 1] <= e.end + gapMs);
    const k = at >= 0 ? faults[at].kind : "none";
    if (at >= 0) perEventMs[at] += gap;
    byKind[k] = (byKind[k] ?? 0) + gap / 1000;
  }
  const round = (sec: number) => Math.round(sec * 10) / 10;
  for (const k of Object.keys(byKind)) byKind[k] = round(byKind[k]);
  const byFault: Record<string, FaultKindUnavailability> = {};
  faults.forEach((e, j) => {
    const f = (byFault[e.kind] ??= { faults: 0, totalSec: 0, meanSec: 0, maxSec: 0 });
    f.faults++;
    f.totalSec += perEventMs[j] / 1000;
    f.maxSec = Math.max(f.maxSec, perEventMs[j] / 1000);
  });
  for (const f of Object.values(byFault)) {
    f.meanSec = round(f.totalSec / f.faults);
    f.totalSec = round(f.totalSec);
    f.maxSec = round(f.maxSec);
  }
  return { totalSec: Math.round(total / 100) / 10, byKind, byFault };
}

/** One line per fault kind of {@link unavailability}'s `byFault`, most costly first: "kill-leader 4 faults, mean 1.2 s, max 3.0 s". */
export function formatByFault(byFault: Record<string, FaultKindUnavailability>): string {
  return Object.entries(byFault)
    .sort((a, b) => b[1].totalSec - a[1].totalSec || a[0].localeCompare(b[0]))
    .map(([k, f]) => `${k} ${f.faults} fault${f.faults === 1 ? "" : "s"}, mean ${f.meanSec} s, max ${f.maxSec} s`)
    .join("; ");
}
