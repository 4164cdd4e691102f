/**
 * The nemesis checkers over a recorded run: linearizability of the register history (the shared
 * Wing–Gong checker of test/lin with the KV register model, split per key), lost acknowledged appends,
 * doubly applied appends (a unique key whose version is above 1 was written twice), replica convergence
 * (identical stale dumps and revisions on every node) and unavailability (gaps without any successful
 * operation).
 */
import { checkOperations } from "../lin/checker.ts";
import { type KvInput, type KvOperation, type KvOutput, kvModel } from "../lin/kv-model.ts";
import { type NemesisCluster, clusterView, getJson, sleep } from "./cluster.ts";
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

/** Linearizability verdict of a history: "ok" | "illegal" | "unknown" and the checker's message. */
export function checkLinearizable(history: HistoryRecord[], maxSteps = 2_000_000): { verdict: string; message: string } {
  const r = checkOperations(kvModel, toOperations(history), { maxSteps });
  return { verdict: r.verdict, message: r.message };
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
  const body = await getJson<{ kvs: Array<{ key: string; value: string; modRevision: number; version: number }> }>(
    `${baseUrl}/v1/kv?prefix=&consistency=${consistency}`,
    10_000,
  );
  if (!body) return undefined;
  return body.kvs.map((kv) => ({ key: kv.key, value: atob(kv.value), modRevision: Number(kv.modRevision), version: Number(kv.version) }));
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
 * Waits (bounded by `timeoutMs`) until every member reports the same revision and applied index and their
 * stale dumps are identical. Returns undefined on success, else what differed.
 */
export async function checkConvergence(c: NemesisCluster, timeoutMs: number): Promise<string | undefined> {
  const deadline = performance.now() + timeoutMs;
  let why = "";
  for (let i = 0; i < 1000 && performance.now() < deadline; i++) {
    const views = await Promise.all(c.members.map((m) => clusterView(c.url(m))));
    const revs = views.map((v, j) => `${c.members[j].id}: rev ${v?.revision ?? "?"} applied ${v?.appliedIndex ?? "?"}`);
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

/**
 * Unavailability: every gap longer than `gapMs` between consecutive successful operations (any client),
 * summed, and attributed to the fault active when the gap began ("none" otherwise). Seconds.
 */
export function unavailability(history: HistoryRecord[], faults: FaultEvent[], startMs: number, endMs: number, gapMs = 1000): { totalSec: number; byKind: Record<string, number> } {
  const times = history.filter((h) => h.outcome === "ok").map((h) => h.ret!).sort((a, b) => a - b);
  const points = [startMs, ...times, endMs];
  const byKind: Record<string, number> = {};
  let total = 0;
  for (let i = 1; i < points.length; i++) {
    const gap = points[i] - points[i - 1];
    if (gap <= gapMs) continue;
    total += gap;
    const f = faults.find((e) => e.start <= points[i - 1] + gapMs && points[i - 1] <= e.end + gapMs);
    const k = f?.kind ?? "none";
    byKind[k] = (byKind[k] ?? 0) + gap / 1000;
  }
  for (const k of Object.keys(byKind)) byKind[k] = Math.round(byKind[k] * 10) / 10;
  return { totalSec: Math.round(total / 100) / 10, byKind };
}
