/**
 * Writes the benchmark key space into edgekv: key i = `bench/%08d`, value = a..z repeated to `valueBytes`
 * (the anchors' wrk/common.lua scheme, so gets hit existing 256-byte values), 128 puts per `POST /v1/txn`
 * (the per-branch op limit, as etcd's --max-txn-ops), `parallel` requests in flight. Bodies are CBOR
 * (docs/api.md: keys and values as byte strings), so neither side spends time on base64 and JSON text of
 * 40 KB per txn. Progress (keys, rate, time left) to stderr every 5 s.
 */
import { apiCbor, CBOR_TYPE } from "../../src/api/wire.ts";
import { sleep } from "./procs.ts";

/** The value the anchors' scripts write: letters a..z repeated to `bytes` bytes. */
export function benchValue(bytes: number): string {
  let s = "";
  for (let i = 0; i < bytes; i++) s += String.fromCharCode(97 + (i % 26));
  return s;
}

/**
 * Puts keys [from, to) through `url` (any member; followers forward). Retries a failed batch up to 20
 * times (503 during an election). Throws when a batch keeps failing. Returns the elapsed ms.
 */
export async function loadEdgekv(url: string, from: number, to: number, valueBytes = 256, parallel = 4, batch = 128): Promise<number> {
  const value = new TextEncoder().encode(benchValue(valueBytes));
  const utf8 = new TextEncoder();
  const t0 = Date.now();
  let next = from;
  let done = 0;
  let lastPrint = t0;
  const worker = async (): Promise<void> => {
    while (next < to) {
      const start = next;
      const end = Math.min(to, start + batch);
      next = end;
      const success = [];
      for (let i = start; i < end; i++) success.push({ op: "put", key: utf8.encode(`bench/${String(i).padStart(8, "0")}`), value });
      const body = new Uint8Array(apiCbor.encode({ compare: [], success, failure: [] }));
      for (let attempt = 0; ; attempt++) {
        const r = await fetch(`${url}/v1/txn`, { method: "POST", headers: { "content-type": CBOR_TYPE }, body, signal: AbortSignal.timeout(30_000) }).catch((e: Error) => e);
        if (!(r instanceof Error) && r.ok) {
          await r.arrayBuffer();
          break;
        }
        const why = r instanceof Error ? r.message : `${r.status} ${await r.text()}`;
        if (attempt >= 20) throw new Error(`edgekv load: txn of keys ${start}..${end} failed: ${why}`);
        await sleep(250);
      }
      done += end - start;
      if (Date.now() - lastPrint > 5000) {
        lastPrint = Date.now();
        const perS = done / ((Date.now() - t0) / 1000);
        process.stderr.write(`  loaded ${done} of ${to - from} keys (${Math.round(perS)}/s, ~${Math.round((to - from - done) / perS)} s left)\n`);
      }
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return Date.now() - t0;
}
