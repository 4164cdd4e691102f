/**
 * Small helpers for the named nemesis scenarios (test/nemesis/*.test.ts): the runtime the test runs on,
 * a recorder of register operations in the nemesis history format, bounded polling, HTTP calls that never
 * throw, prefix ranges, bulk loading by transactions and a bounded watch reader.
 */
import type { NodeRuntime } from "./cluster.ts";
import { classify, type HistoryRecord } from "./workload.ts";
import type { KvInput } from "../lin/kv-model.ts";

/** The runtime under test (scripts/test-all.ts sets EDGEKV_TEST_RUNTIME); node when unset. */
export function testRuntime(): NodeRuntime {
  const v = process.env.EDGEKV_TEST_RUNTIME;
  return v === "bun" || v === "deno" ? v : "node";
}

/** Records put/get/cas calls against given base URLs as nemesis history records. */
export class Recorder {
  readonly history: HistoryRecord[] = [];
  private readonly t0 = performance.now();
  now = () => performance.now() - this.t0;

  /** PUT key=value at `url` (deadline `timeoutMs`); returns the record. */
  async put(url: string, key: string, value: string, timeoutMs = 5000, headers: Record<string, string> = {}): Promise<HistoryRecord> {
    return this.call(url, { kind: "put", key, value }, `${url}/v1/kv/${key}`, { method: "PUT", body: value, headers }, [200], timeoutMs);
  }

  /** Linearizable GET of key at `url`. */
  async get(url: string, key: string, timeoutMs = 5000): Promise<HistoryRecord> {
    return this.call(url, { kind: "get", key }, `${url}/v1/kv/${key}`, {}, [200, 404], timeoutMs);
  }

  private async call(node: string, input: KvInput, url: string, init: RequestInit, okStatuses: number[], timeoutMs: number): Promise<HistoryRecord> {
    const call = this.now();
    const rec: HistoryRecord = { client: this.history.length, input, call, outcome: "unknown", node, detail: "" };
    try {
      const res = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
      const body = await res.text();
      rec.outcome = classify(res.status, body, okStatuses);
      rec.detail = `${res.status} ${body.slice(0, 200)}`;
      if (rec.outcome === "ok") {
        rec.ret = this.now();
        rec.output = input.kind === "get" ? { value: res.status === 200 ? body : null } : {};
      }
    } catch (e) {
      rec.detail = String((e as Error)?.message ?? e);
    }
    this.history.push(rec);
    return rec;
  }
}

/** Polls `probe` every `everyMs` until it returns a value other than undefined/false; throws after `timeoutMs`. */
export async function until<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs: number, everyMs = 100): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (let i = 0; i < 100_000; i++) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (performance.now() > deadline) break;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** One HTTP answer as the scenario tests keep it; status 0 = network error or deadline (then `body` says which). */
export interface CallResult {
  status: number;
  body: string;
  headers: Headers | undefined;
  ms: number;
}

/** One HTTP call with a deadline (default 8 s); never throws. */
export async function call(url: string, init: RequestInit = {}, timeoutMs = 8000): Promise<CallResult> {
  const t = performance.now();
  try {
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
    return { status: res.status, body: await res.text(), headers: res.headers, ms: performance.now() - t };
  } catch (e) {
    return { status: 0, body: String((e as Error)?.message ?? e), headers: undefined, ms: performance.now() - t };
  }
}

/** POST/DELETE/PUT with a JSON body (deadline `timeoutMs`); never throws. */
export function callJson(url: string, method: string, body: unknown, timeoutMs = 8000): Promise<CallResult> {
  return call(url, { method, body: body === undefined ? undefined : JSON.stringify(body), headers: { "content-type": "application/json" } }, timeoutMs);
}

/** One key of a range answer (docs/api.md `GET /v1/kv`), value decoded from base64 to a string. */
export interface RangedKv {
  key: string;
  value: string;
  modRevision: number;
  lease: string;
}

/** `GET /v1/kv?prefix=` at `baseUrl` with `consistency`; undefined unless it answers 200 within `timeoutMs`. */
export async function rangePrefix(baseUrl: string, prefix: string, consistency = "linearizable", timeoutMs = 5000): Promise<RangedKv[] | undefined> {
  const r = await call(`${baseUrl}/v1/kv?prefix=${encodeURIComponent(prefix)}&consistency=${consistency}`, {}, timeoutMs);
  if (r.status !== 200) return undefined;
  const body = JSON.parse(r.body) as { kvs: Array<{ key: string; value: string; modRevision: number | string; lease: number | string }> };
  return body.kvs.map((kv) => ({ key: kv.key, value: atob(kv.value), modRevision: Number(kv.modRevision), lease: String(kv.lease) }));
}

/**
 * Writes keys `${prefix}${i}` = valueOf(i) for i in 1..n through `POST /v1/txn` at `baseUrl()`, `perTxn` puts
 * per transaction (at most 128, the per-branch limit of docs/api.md), `inFlight` transactions at a time
 * (one log entry each; the leader batches them per persist). Each transaction is retried on 503/504/network
 * errors for up to 20 s (a retried put writes the same value, so a duplicate changes nothing a test reads).
 * Throws naming the first transaction that could not be written, or on a 4xx answer.
 */
export async function loadKeysByTxn(baseUrl: () => Promise<string>, prefix: string, n: number, valueOf: (i: number) => string, perTxn = 128, inFlight = 4): Promise<void> {
  const firsts: number[] = [];
  for (let first = 1; first <= n; first += perTxn) firsts.push(first);
  let next = 0;
  const worker = async () => {
    while (next < firsts.length) {
      const first = firsts[next++];
      const success: Array<{ op: "put"; key: string; value: string }> = [];
      for (let i = first; i < first + perTxn && i <= n; i++) success.push({ op: "put", key: `${prefix}${i}`, value: btoa(valueOf(i)) });
      await until(`txn of keys ${first}..${first + success.length - 1}`, async () => {
        const r = await callJson(`${await baseUrl()}/v1/txn`, "POST", { success }, 10_000);
        if (r.status >= 400 && r.status < 500) throw new Error(`txn refused: ${r.status} ${r.body}`);
        return r.status === 200 ? r : undefined;
      }, 20_000, 200);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
}

/** One event of a watch stream (docs/api.md `GET /v1/watch`). */
export interface WatchedEvent {
  type: "put" | "delete";
  key: string;
  modRevision: number;
}

/**
 * Opens `GET /v1/watch?prefix=…&fromRevision=…` at `baseUrl` and collects events until `enough(events)`
 * holds or `timeoutMs` passes; returns what arrived (the stream is then cancelled).
 */
export async function watchEvents(baseUrl: string, prefix: string, fromRevision: number, enough: (events: WatchedEvent[]) => boolean, timeoutMs: number): Promise<WatchedEvent[]> {
  const events: WatchedEvent[] = [];
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), timeoutMs);
  try {
    const res = await fetch(`${baseUrl}/v1/watch?prefix=${encodeURIComponent(prefix)}&fromRevision=${fromRevision}`, { signal: ctl.signal });
    if (!res.ok || !res.body) return events;
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffered = "";
    for (let i = 0; i < 10_000 && !enough(events); i++) {
      const { value, done } = await reader.read();
      if (done) break;
      buffered += value;
      const lines = buffered.split("\n");
      buffered = lines.pop() ?? "";
      for (const line of lines) {
        if (!line.startsWith("data:")) continue;
        const msg = JSON.parse(line.slice(5)) as { type?: string; events?: Array<{ type: "put" | "delete"; kv: { key: string; modRevision: number | string } }> };
        if (msg.type !== "events" || !msg.events) continue;
        for (const e of msg.events) events.push({ type: e.type, key: e.kv.key, modRevision: Number(e.kv.modRevision) });
      }
    }
    await reader.cancel().catch(() => undefined);
  } catch {
    // deadline or a dropped stream: return what arrived
  } finally {
    clearTimeout(timer);
    ctl.abort();
  }
  return events;
}
