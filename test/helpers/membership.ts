/**
 * Shared pieces of the membership / readiness tests on real processes and in-process clusters
 * (test/integration/member-removed-process, wrong-peer-url-process, membership-readiness): reading an
 * API answer's error code, and a bounded poll that fails with the nodes' logs.
 */
import { sleep } from "./cluster.ts";

/** An HTTP answer as these tests assert it: status, the error code, and the raw body text. */
export interface Answer {
  status: number;
  /** `error.code` of an API error, or `reason` of a /readyz answer; "" when neither (or not JSON). */
  code: string;
  body: string;
}

/** Reads `res` once: its status, its error code (docs/api.md error shape, or /readyz's `reason`) and body. */
export async function answer(res: Response): Promise<Answer> {
  const body = await res.text();
  let code = "";
  try {
    const j = JSON.parse(body) as { error?: { code?: string }; reason?: string };
    code = j.error?.code ?? j.reason ?? "";
  } catch {
    // not JSON
  }
  return { status: res.status, code, body };
}

/**
 * Polls `probe` every 100 ms until it returns a value (not undefined), at most `timeoutMs` ms and 1000
 * polls; a probe that throws (a node restarting or not serving yet) counts as no value. Throws
 * `timed out after <timeoutMs> ms waiting for <what>` followed by `logs()` (the nodes' logs).
 */
export async function pollUntil<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number, logs: () => string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < 1000 && Date.now() < deadline; i++) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch {
      // not serving yet, or restarting: try again
    }
    await sleep(100);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${logs()}`);
}
