/**
 * Small helpers for the named nemesis scenarios (test/nemesis/*.test.ts): the runtime the test runs on,
 * a recorder of register operations in the nemesis history format, and bounded polling.
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

/**
 * Why nemesis tests with Deno nodes are skipped, or undefined when they run. Finding 4 of docs/nemesis.md:
 * a Deno node dies with an uncaught "TypeError: Request closed" (runtime-adapters/shared/peer-fetch-server.ts,
 * `req.body?.cancel()` in the catch of the message stream: on Deno the `body` getter itself throws once the
 * request closed) as soon as a partition cuts a peer connection. Set EDGEKV_NEMESIS_FINDINGS=1 to run them.
 */
