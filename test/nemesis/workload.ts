/**
 * The nemesis workload: concurrent clients doing put, linearizable get, compare-and-swap (If-Match on the
 * modRevision from a previous get's ETag, or If-None-Match: * when the get saw no key), single-key txn
 * compare-and-swap on the value, on a small set of register keys; plus append-only writes of unique keys
 * (`u/<client>-<n>`) with client sessions (X-Client-Id / X-Request-Seq, retried on unknown outcomes) to
 * detect lost and doubly applied writes.
 *
 * Independent keys over time (Jepsen's `independent` checker idea): register keys are `r/<window>/<i>`,
 * where the window is the run clock divided by `keyWindowMs`, so every client moves to fresh keys each
 * window. One key's history is then bounded by the window's length whatever the run's length, and an
 * unknown-outcome write (open until the end of time for the checker) only widens the search of its own
 * key. Linearizability is local (Herlihy & Wing 1990), so checking each key alone is sound.
 *
 * Every register operation is recorded as invoke/ok/fail/unknown with monotonic times (performance.now,
 * ms). Outcome rules (docs/api.md): 2xx, 404 on get and 412 on CAS are "ok"; other 4xx, 503
 * (`no_leader`, `unavailable`, `not_member`), 429 and `504 timeout` mean nothing was applied ("fail");
 * `504 outcome_unknown`, 5xx otherwise, timeouts and connection errors are "unknown". Values are unique per
 * write, so "modRevision = R" and "value = the value written at R" are the same condition: a CAS on the
 * ETag is checked as a CAS on the value by the KV register model (test/lin/kv-model.ts).
 */
import type { KvInput, KvOutput } from "../lin/kv-model.ts";
import type { Rng } from "./rng.ts";

/** One line of the recorded history (JSON lines in the run folder). */
export interface HistoryRecord {
  client: number;
  input: KvInput;
  /** Invocation time, ms on the run's monotonic clock. */
  call: number;
  /** Return time (absent for "unknown"). */
  ret?: number;
  outcome: "ok" | "fail" | "unknown";
  output?: KvOutput;
  /** Node the request went to, HTTP status or error text (for humans). */
  node: string;
  detail: string;
}

/** A unique-key append and what became of it. */
export interface AppendRecord {
  key: string;
  value: string;
  outcome: "ok" | "fail" | "unknown";
  attempts: number;
  /** The last answer (status and body start, or the error). */
  detail?: string;
}

/** What the workload needs from the harness. */
export interface WorkloadTarget {
  /** Base URLs of the nodes a client may talk to now (live ones); may be empty for a moment. */
  urls(): Array<{ id: string; url: string }>;
}

/** Options of {@link runWorkload}. */
export interface WorkloadOptions {
  clients: number;
  /** Register keys per key window. */
  registerKeys: number;
  /** Length of a key window, ms of the run clock (see the file comment); default 10000. */
  keyWindowMs?: number;
  /** Per-request deadline, ms. */
  requestTimeoutMs: number;
  /** Stop issuing new operations when this resolves / returns true. */
  stop: () => boolean;
  rng: Rng;
  /** The run's clock (ms). */
  now: () => number;
  /** Hard bound on operations per client. */
  maxOpsPerClient: number;
  /** Incremented per finished operation (progress lines). */
  counter?: { ops: number };
}

/** The recorded histories. */
export interface WorkloadResult {
  history: HistoryRecord[];
  appends: AppendRecord[];
}

type Outcome = { kind: "ok" | "fail" | "unknown"; status: number; body: string; etag: string | null; detail: string };

/** Classifies one HTTP answer by the rules in the file comment. */
export function classify(status: number, body: string, okStatuses: number[]): "ok" | "fail" | "unknown" {
  if (okStatuses.includes(status)) return "ok";
  let code = "";
  try {
    code = (JSON.parse(body) as { error?: { code?: string } }).error?.code ?? "";
  } catch {
    // not JSON: decided by status only
  }
  if (code === "outcome_unknown") return "unknown";
  if (status >= 400 && status < 500) return "fail";
  if (status === 503 || (status === 504 && code === "timeout")) return "fail";
  return "unknown";
}

async function request(url: string, init: RequestInit, timeoutMs: number, okStatuses: number[]): Promise<Outcome> {
  try {
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
    const body = await res.text();
    return { kind: classify(res.status, body, okStatuses), status: res.status, body, etag: res.headers.get("etag"), detail: `${res.status} ${body.slice(0, 120)}` };
  } catch (e) {
    return { kind: "unknown", status: 0, body: "", etag: null, detail: String((e as Error)?.message ?? e).slice(0, 120) };
  }
}

const b64 = (s: string) => btoa(s);

/** Default key window, ms: about 450 register operations per key at the 10-minute runs' rate (225 ok/s, 5 keys). */
export const DEFAULT_KEY_WINDOW_MS = 10_000;

/** The register key `i` of key window `window` (`r/<window>/<i>`). */
export function registerKey(window: number, i: number): string {
  return `r/${window}/${i}`;
}

/** Runs the workload until `stop()`; see the file comment. */
export async function runWorkload(target: WorkloadTarget, o: WorkloadOptions): Promise<WorkloadResult> {
  const history: HistoryRecord[] = [];
  const appends: AppendRecord[] = [];
  let valueSeq = 0;
  const client = async (c: number) => {
    const rng = o.rng.fork(c + 1);
    let sessionSeq = 0;
    let sessionGen = 0; // a new client id after session_expired (docs/api.md: "use a new X-Client-Id")
    let appendSeq = 0;
    let lastSeen = new Map<string, { value: string | null; etag: string | null }>();
    let lastWindow = -1;
    const pick = () => {
      const urls = target.urls();
      return urls.length === 0 ? undefined : urls[rng.int(urls.length)];
    };
    for (let n = 0; n < o.maxOpsPerClient && !o.stop(); n++) {
      const node = pick();
      if (!node) {
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      const window = Math.floor(o.now() / (o.keyWindowMs ?? DEFAULT_KEY_WINDOW_MS));
      if (window !== lastWindow) {
        lastSeen = new Map(); // earlier windows' keys are never touched again
        lastWindow = window;
      }
      const key = registerKey(window, rng.int(o.registerKeys));
      const roll = rng.next();
      const rec = (input: KvInput, call: number, out: Outcome, output: KvOutput | undefined) => {
        const r: HistoryRecord = { client: c, input, call, outcome: out.kind, node: node.id, detail: out.detail };
        if (out.kind === "ok") {
          r.ret = o.now();
          r.output = output;
        }
        history.push(r);
        if (o.counter) o.counter.ops++;
      };
      if (roll < 0.3) {
        const call = o.now();
        const out = await request(`${node.url}/v1/kv/${key}`, {}, o.requestTimeoutMs, [200, 404]);
        const value = out.status === 200 ? out.body : null;
        rec({ kind: "get", key }, call, out, { value });
        if (out.kind === "ok") lastSeen.set(key, { value, etag: out.etag });
      } else if (roll < 0.5) {
        const value = `v${c}-${++valueSeq}`;
        const call = o.now();
        const out = await request(`${node.url}/v1/kv/${key}`, { method: "PUT", body: value }, o.requestTimeoutMs, [200]);
        rec({ kind: "put", key, value }, call, out, {});
      } else if (roll < 0.65) {
        const seen = lastSeen.get(key);
        if (!seen) continue;
        const value = `v${c}-${++valueSeq}`;
        const headers: Record<string, string> = seen.value === null ? { "If-None-Match": "*" } : { "If-Match": seen.etag ?? '"0"' };
        const call = o.now();
        const out = await request(`${node.url}/v1/kv/${key}`, { method: "PUT", body: value, headers }, o.requestTimeoutMs, [200, 412]);
        rec({ kind: "cas", key, expected: seen.value, value }, call, out, { ok: out.status === 200 });
        lastSeen.delete(key);
      } else if (roll < 0.8) {
        const seen = lastSeen.get(key);
        if (!seen) continue;
        const value = `v${c}-${++valueSeq}`;
        const compare = seen.value === null ? { key, target: "version", result: "=", value: 0 } : { key, target: "value", result: "=", value: b64(seen.value) };
        const body = JSON.stringify({ compare: [compare], success: [{ op: "put", key, value: b64(value) }], failure: [] });
        const call = o.now();
        const out = await request(`${node.url}/v1/txn`, { method: "POST", body, headers: { "content-type": "application/json" } }, o.requestTimeoutMs, [200]);
        let ok = false;
        if (out.kind === "ok") ok = (JSON.parse(out.body) as { succeeded: boolean }).succeeded === true;
        rec({ kind: "cas", key, expected: seen.value, value }, call, out, { ok });
        lastSeen.delete(key);
      } else {
        // Unique append with a client session: resend the same (client id, seq) while the outcome is unknown.
        const a: AppendRecord = { key: `u/${c}-${++appendSeq}`, value: `a${c}-${appendSeq}`, outcome: "unknown", attempts: 0 };
        appends.push(a);
        const seq = ++sessionSeq;
        for (let attempt = 0; attempt < 5 && !o.stop(); attempt++) {
          const to = attempt === 0 ? node : (pick() ?? node);
          a.attempts++;
          const headers = { "X-Client-Id": `nemesis-${o.rng.seed}-${c}-${sessionGen}`, "X-Request-Seq": String(seq) };
          const out = await request(`${to.url}/v1/kv/${a.key}`, { method: "PUT", body: a.value, headers }, o.requestTimeoutMs, [200]);
          // A definite failure after an unknown attempt does not undo that attempt: still unknown.
          a.outcome = out.kind === "fail" && attempt > 0 ? "unknown" : out.kind;
          a.detail = out.detail;
          if (out.status === 409 && out.body.includes("session_expired")) {
            // A session whose first write never applied is unknown to the server: start a fresh one.
            sessionGen++;
            sessionSeq = 0;
          }
          if (out.kind !== "unknown") break;
          await new Promise((r) => setTimeout(r, 100));
        }
        if (o.counter) o.counter.ops++;
      }
    }
    lastSeen = new Map();
  };
  await Promise.all(Array.from({ length: o.clients }, (_, c) => client(c)));
  return { history, appends };
}
