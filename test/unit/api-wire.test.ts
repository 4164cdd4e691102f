/**
 * Wire helpers of the API (src/api/wire.ts) and the SSE reader of the SDK (src/client/sse.ts): lease id
 * grammar (C08), base64, error mapping, and SSE framing split at arbitrary chunk boundaries. Property
 * tests with fast-check (fixed seed, bounded runs).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { ApiError, toApiError, API_ERROR_STATUS } from "../../src/api/errors.ts";
import { fromBase64, grantLeaseIdFromBody, keyBytes, leaseFromBody, parseLeaseId, requireUtf8Key, toBase64, txnOpFromBody } from "../../src/api/wire.ts";
import { readSse } from "../../src/client/sse.ts";
import { errorFromBody, CompactedError, NotLeaderError, UnavailableError } from "../../src/client/errors.ts";

const RUNS = { numRuns: 200, seed: 42 };

/** What the lease id grammar should say: "ok", "bad_request" or "lease_not_found", computed with BigInt independently. */
function expectedLease(s: string): string {
  if (!/^[1-9][0-9]*$/.test(s)) return "bad_request";
  const n = BigInt(s);
  if (n > 2n ** 63n - 1n) return "bad_request";
  return n > BigInt(Number.MAX_SAFE_INTEGER) ? "lease_not_found" : "ok";
}

function leaseOutcome(s: string): string {
  try {
    parseLeaseId(s);
    return "ok";
  } catch (err) {
    return (err as ApiError).code;
  }
}

describe("api wire: lease ids", () => {
  it("accepts exactly the positive int64 decimals; unusable big ids are lease_not_found (C08)", () => {
    const digits = fc.stringMatching(/^-?[0-9]{0,21}(\.[0-9])?$/);
    const anyString = fc.string({ maxLength: 24 });
    const near = fc.bigInt({ min: 0n, max: 2n ** 65n }).map(String);
    fc.assert(
      fc.property(fc.oneof(digits, anyString, near), (s) => leaseOutcome(s) === expectedLease(s)),
      RUNS,
    );
    assert.equal(parseLeaseId("9007199254740991"), Number.MAX_SAFE_INTEGER);
    assert.equal(leaseOutcome("9223372036854775807"), "lease_not_found");
    assert.equal(leaseOutcome("9223372036854775808"), "bad_request");
  });

  it("a grant of an id above 2^53-1 is bad_request (it can never be granted), not lease_not_found", () => {
    assert.equal(errorCodeOf(() => grantLeaseIdFromBody("9007199254740992")), "bad_request");
    assert.equal(errorCodeOf(() => grantLeaseIdFromBody("9223372036854775807")), "bad_request");
    assert.equal(grantLeaseIdFromBody("9007199254740991"), Number.MAX_SAFE_INTEGER);
    assert.equal(grantLeaseIdFromBody(undefined), 0);
    assert.equal(grantLeaseIdFromBody(7001), 7001);
  });

  it("a JSON number lease id that lost digits (above 2^53-1) is refused instead of rounded", () => {
    assert.equal(errorCodeOf(() => leaseFromBody(9007199254740993)), "bad_request");
    assert.equal(errorCodeOf(() => leaseFromBody(1.5)), "bad_request");
    assert.equal(leaseFromBody(42), 42);
  });
});

describe("api wire: keys in bodies", () => {
  it("a JSON key with a lone surrogate is bad_request (it has no UTF-8 form); paired surrogates are fine", () => {
    assert.equal(errorCodeOf(() => keyBytes("a\ud800")), "bad_request");
    assert.equal(errorCodeOf(() => keyBytes("\udc00b")), "bad_request");
    assert.deepEqual(keyBytes("\ud83d\ude00"), new Uint8Array([0xf0, 0x9f, 0x98, 0x80]));
  });

  it("a txn put of a key that is not UTF-8 (CBOR bytes) is bad_request; ranges over raw bytes still work", () => {
    assert.equal(errorCodeOf(() => requireUtf8Key(new Uint8Array([0xff, 0xfe]))), "bad_request");
    assert.equal(errorCodeOf(() => txnOpFromBody({ op: "put", key: new Uint8Array([0xff, 0xfe]), value: new Uint8Array([1]) } as never)), "bad_request");
    assert.equal(errorCodeOf(() => txnOpFromBody({ op: "range", key: new Uint8Array([0xff]), end: new Uint8Array([0xff, 0xff]) } as never)), "ok");
  });
});

/** The ApiError code `f` throws, or "ok". */
function errorCodeOf(f: () => unknown): string {
  try {
    f();
    return "ok";
  } catch (err) {
    return (err as ApiError).code;
  }
}

describe("api wire: base64 and errors", () => {
  it("round-trips bytes through base64, including large values", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (b) => assert.deepEqual(fromBase64(toBase64(b)), b)), RUNS);
    const big = new Uint8Array(200_000).map((_, i) => (i * 7) & 255);
    assert.deepEqual(fromBase64(toBase64(big)), big);
    assert.throws(() => fromBase64("**"), (e: ApiError) => e.code === "bad_request");
  });

  it("maps lower-layer codes to API codes and statuses", () => {
    const cases: Array<[unknown, string, number]> = [
      [{ code: "lease_not_found", message: "m" }, "lease_not_found", 404],
      [{ code: "duplicate_key_in_txn", message: "m" }, "bad_request", 400],
      [{ code: "value_too_large", message: "m" }, "payload_too_large", 413],
      [{ code: "session_expired", message: "m" }, "session_expired", 409],
      [{ code: "proposal_dropped", message: "m" }, "unavailable", 503],
      [{ code: "not_leader", message: "m", leaderId: "" }, "no_leader", 503],
      [{ code: "not_leader", message: "m", leaderId: "n2" }, "not_leader", 421],
      [{ code: "whatever_new", message: "m" }, "internal", 500],
      [Object.assign(new Error("t"), { name: "TimeoutError" }), "timeout", 504],
      ["a string", "internal", 500],
    ];
    for (const [err, code, status] of cases) {
      const e = toApiError(err);
      assert.deepEqual([e.code, e.status], [code, status]);
    }
    for (const [code, status] of Object.entries(API_ERROR_STATUS)) assert.equal(new ApiError(code as keyof typeof API_ERROR_STATUS, "m").status, status);
  });

  it("a deadline's runtime error becomes our own words, naming the limit", () => {
    // AbortSignal.timeout's reason, as Node, Bun and Deno word it.
    const t = toApiError(new DOMException("The operation was aborted due to timeout", "TimeoutError"));
    assert.equal(t.code, "timeout");
    assert.doesNotMatch(t.message, /aborted due to timeout/);
    assert.match(t.message, /requestTimeoutMs/);
    const a = toApiError(new DOMException("The operation was aborted.", "AbortError"));
    assert.equal(a.message, "the request was cancelled before it finished");
    assert.equal(toApiError(Object.assign(new Error("read cancelled by the client"), { name: "AbortError" })).message, "read cancelled by the client");
  });

  it("the SDK rebuilds typed errors from API bodies", () => {
    const h = new Headers({ "retry-after": "3" });
    const u = errorFromBody(503, { error: { code: "no_leader", message: "m" } }, h);
    assert.ok(u instanceof UnavailableError);
    assert.equal(u.details.retryAfterSec, 3);
    const c = errorFromBody(410, { error: { code: "compacted", message: "m", compactRevision: 9 } });
    assert.ok(c instanceof CompactedError && c.details.compactRevision === 9);
    const n = errorFromBody(421, { error: { code: "not_leader", message: "m", leader: { id: "b", clientUrl: "http://b" } } });
    assert.ok(n instanceof NotLeaderError && n.details.leader?.clientUrl === "http://b");
    assert.equal(errorFromBody(502, "<html>").code, "unavailable");
  });
});

describe("sdk: SSE reader", () => {
  const stream = (chunks: string[]) =>
    new ReadableStream<Uint8Array>({
      start(ctrl) {
        for (const c of chunks) ctrl.enqueue(new TextEncoder().encode(c));
        ctrl.close();
      },
    });

  it("parses events however the stream is split, with CRLF/LF/CR line ends", async () => {
    const text = ": comment\r\nevent: events\r\nid: 3\r\ndata: {\"a\":1}\r\n\r\nevent: progress\ndata: x\ndata: y\n\nid: 9\rdata: z\r\r";
    const want = [
      { event: "events", data: '{"a":1}', id: "3" },
      { event: "progress", data: "x\ny", id: "3" },
      { event: "message", data: "z", id: "9" },
    ];
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 1, max: text.length - 1 }), { maxLength: 6 }), async (cuts) => {
        const points = [...new Set(cuts)].sort((a, b) => a - b);
        const chunks: string[] = [];
        let last = 0;
        for (const p of points) {
          chunks.push(text.slice(last, p));
          last = p;
        }
        chunks.push(text.slice(last));
        const got = [];
        for await (const e of readSse(stream(chunks))) got.push(e);
        assert.deepEqual(got, want);
      }),
      { numRuns: 100, seed: 7 },
    );
  });
});
