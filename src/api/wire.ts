/**
 * Wire formats of the client API (DESIGN.md "Client API (v1)"): zod schemas of every input, and the
 * JSON / CBOR shapes of results. JSON: keys are UTF-8 strings, values base64 strings, lease ids decimal
 * strings (int64 does not fit a JSON number). CBOR: keys and values are byte strings, lease ids integers.
 * Shared by the server (`app.ts`) and, for the result shapes, documented in docs/api.md.
 */
import { z } from "zod";
import { Encoder } from "cbor-x";
import { ApiError } from "./errors.ts";
import { MEMBER_ID_RE, MEMBER_URL_MAX, MEMBER_URL_RE } from "./member-input.ts";
import { compareBytes, prefixEnd, type Compare, type CompareResult, type KeyValue, type RequestOp } from "../kv/types.ts";

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder();

/** CBOR codec of the API: plain byte strings for Uint8Array (no tag 64), maps as objects, no records. */
export const apiCbor = new Encoder({ tagUint8Array: false, useRecords: false, mapsAsObjects: true });

/** The CBOR media type clients choose with `Accept` / `Content-Type`. */
export const CBOR_TYPE = "application/cbor";

/** UTF-8 bytes of a string. */
export function utf8(s: string): Uint8Array {
  return utf8Encoder.encode(s);
}

/** String from UTF-8 bytes (invalid sequences become U+FFFD). */
export function fromUtf8(b: Uint8Array): string {
  return utf8Decoder.decode(b);
}

/** Standard base64 (RFC 4648 §4) of bytes; chunked so large values do not overflow the call stack. */
export function toBase64(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  return btoa(s);
}

/** Bytes of a standard base64 string. Throws `ApiError("bad_request")` on invalid input. */
export function fromBase64(s: string): Uint8Array {
  let bin: string;
  try {
    bin = atob(s);
  } catch {
    throw new ApiError("bad_request", "invalid base64 value");
  }
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** Range end meaning "every key >= key" (etcd's "\\0" range end; src/kv/types.ts). */
export const OPEN_END: Uint8Array = new Uint8Array([0]);

/** Largest lease id the API accepts syntactically: int64 max (etcd lease ids are int64). */
const INT64_MAX = 2n ** 63n - 1n;

/**
 * Parses a lease id given as a decimal string (docs/scenarios.md C08). Rejects 0, negatives, floats,
 * non-numeric and empty strings, and values above int64 max with `bad_request`; a valid int64 above
 * 2^53-1 can never have been granted (ids are JS-safe integers) and gets `lease_not_found`.
 */
export function parseLeaseId(s: string | undefined): number {
  if (s === undefined || !/^[1-9][0-9]{0,19}$/.test(s)) throw new ApiError("bad_request", `invalid lease id ${JSON.stringify(s ?? "")}: want a decimal integer in 1..2^63-1`);
  const big = BigInt(s);
  if (big > INT64_MAX) throw new ApiError("bad_request", `invalid lease id ${s}: above 2^63-1`);
  if (big > BigInt(Number.MAX_SAFE_INTEGER)) throw new ApiError("lease_not_found", `lease ${s} not found`);
  return Number(big);
}

/** A non-negative integer in a query string (`revision`, `limit`, ...); `bad_request` otherwise. */
export function parseCount(name: string, s: string | undefined): number | undefined {
  if (s === undefined || s === "") return undefined;
  if (!/^[0-9]{1,15}$/.test(s)) throw new ApiError("bad_request", `${name} must be a non-negative integer, got ${JSON.stringify(s)}`);
  return Number(s);
}

/** A boolean query flag: present-and-empty, "true" or "1" = true; "false" or "0" = false. */
export function parseFlag(name: string, s: string | undefined): boolean {
  if (s === undefined || s === "false" || s === "0") return false;
  if (s === "" || s === "true" || s === "1") return true;
  throw new ApiError("bad_request", `${name} must be true or false, got ${JSON.stringify(s)}`);
}

/** A key or value in a request body: a string (JSON: key = UTF-8 text, value = base64) or bytes (CBOR). */
const bytesOrString = z.union([z.string(), z.instanceof(Uint8Array)]);
const leaseField = z.union([z.string(), z.number()]).optional();

const putOp = z.object({ op: z.literal("put"), key: bytesOrString, value: bytesOrString, lease: leaseField, prevKv: z.boolean().optional() }).strict();
const deleteOp = z.object({ op: z.enum(["delete", "deleteRange"]), key: bytesOrString, end: bytesOrString.optional(), prefix: z.boolean().optional(), prevKv: z.boolean().optional() }).strict();
const rangeOp = z
  .object({
    op: z.literal("range"),
    key: bytesOrString,
    end: bytesOrString.optional(),
    prefix: z.boolean().optional(),
    limit: z.number().int().min(0).optional(),
    revision: z.number().int().min(0).optional(),
    keysOnly: z.boolean().optional(),
    countOnly: z.boolean().optional(),
  })
  .strict();
const opSchema = z.union([putOp, deleteOp, rangeOp]);
const compareSchema = z
  .object({
    key: bytesOrString,
    target: z.enum(["value", "version", "createRevision", "modRevision", "lease"]),
    end: bytesOrString.optional(),
    prefix: z.boolean().optional(),
    result: z.enum(["=", "!=", "<", ">", "equal", "notEqual", "less", "greater"]),
    value: z.union([z.string(), z.number().int().min(0), z.instanceof(Uint8Array)]),
  })
  .strict();

/** Body of `POST /v1/txn` (JSON or CBOR); see docs/api.md. At most 128 compares and 128 ops per branch. */
export const txnBodySchema = z
  .object({
    compare: z.array(compareSchema).max(128).default([]),
    success: z.array(opSchema).max(128).default([]),
    failure: z.array(opSchema).max(128).default([]),
  })
  .strict();

/** Body of `POST /v1/leases`: TTL in seconds (1..2^31-1) and an optional requested id. */
export const leaseGrantBodySchema = z
  .object({
    ttl: z.number({ error: "must be a JSON number of seconds, 1 to 2147483647" }).int({ error: "must be a whole number of seconds" }).min(1, { error: "must be at least 1 second" }).max(2 ** 31 - 1, { error: "must be at most 2147483647 seconds" }),
    id: z.union([z.string(), z.number()], { error: "must be a lease id: a decimal string or a JSON number" }).optional(),
  })
  .strict();

/** Body of `POST /v1/compact`. */
export const compactBodySchema = z
  .object({ revision: z.number({ error: "must be a JSON number" }).int({ error: "must be a whole number" }).min(1, { error: "must be at least 1 (revision 0 is before the first write)" }) })
  .strict();

const memberId = z.string().min(1).max(64).regex(MEMBER_ID_RE, "member id: letters, digits, '.', '_', '-'");
const httpUrl = z.string().max(MEMBER_URL_MAX).regex(MEMBER_URL_RE, "an http(s) URL");

/** Body of `POST /v1/cluster/members` (adds a learner). */
export const addMemberBodySchema = z.object({ id: memberId, peerUrl: httpUrl, clientUrl: httpUrl }).strict();

/** Body of `PUT /v1/cluster/members/{id}`: the member's new URLs (etcd member update). */
export const updateMemberBodySchema = z.object({ peerUrl: httpUrl, clientUrl: httpUrl }).strict();

/** Body of `POST /v1/cluster/leader`. */
export const transferLeaderBodySchema = z.object({ id: memberId }).strict();

/** Validates a member id from a path; `bad_request` otherwise. */
export function parseMemberId(s: string): string {
  const r = memberId.safeParse(s);
  if (!r.success) throw new ApiError("bad_request", `invalid member id ${JSON.stringify(s)}`);
  return s;
}

/** Parses `body` with `schema`, turning zod issues into one `bad_request` message. */
export function validate<T>(schema: z.ZodType<T>, body: unknown): T {
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  const msg = r.error.issues.map((i) => `${i.path.join(".") || "body"}: ${i.message}`).join("; ");
  throw new ApiError("bad_request", msg);
}

/** True when `s` has no lone UTF-16 surrogate (it has an exact UTF-8 encoding). */
function wellFormed(s: string): boolean {
  return !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s);
}

/**
 * Key from a body field: strings are UTF-8 text, bytes as given. A string with a lone surrogate has no
 * UTF-8 form (an encoder would store U+FFFD, another key than the one sent): `bad_request`.
 */
export function keyBytes(k: string | Uint8Array): Uint8Array {
  if (typeof k !== "string") return k;
  if (!wellFormed(k)) throw new ApiError("bad_request", "key is not valid Unicode text (lone UTF-16 surrogate)");
  return utf8(k);
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * A key to be stored must be valid UTF-8, as on the path form: JSON answers carry keys as text, so a
 * key of other bytes (possible through CBOR) could never be read back or addressed. `bad_request`.
 */
export function requireUtf8Key(key: Uint8Array): Uint8Array {
  try {
    strictUtf8.decode(key);
  } catch {
    throw new ApiError("bad_request", "key is not valid UTF-8");
  }
  return key;
}

/** Value from a body field: strings are base64 (JSON), bytes as given (CBOR). */
export function valueBytes(v: string | Uint8Array): Uint8Array {
  return typeof v === "string" ? fromBase64(v) : v;
}

/**
 * Lease from a body field: decimal string or integer; absent/0/"0" = no lease. A JSON number above 2^53-1
 * was already rounded by the JSON parser, so it is refused (`bad_request`: give large ids as strings).
 */
export function leaseFromBody(v: string | number | undefined): number {
  if (v === undefined || v === 0 || v === "0") return 0;
  if (typeof v === "number" && !Number.isSafeInteger(v)) throw new ApiError("bad_request", `lease id ${v} is not an exact integer (above 2^53-1 a JSON number loses digits): give it as a decimal string`);
  return parseLeaseId(String(v));
}

/**
 * The id asked for in a lease grant (0 = the leader picks one). Ids are JS-safe integers (docs/kv.md), so
 * an int64 above 2^53-1 cannot be granted: `bad_request` (not `lease_not_found`, which would say it may
 * exist).
 */
export function grantLeaseIdFromBody(v: string | number | undefined): number {
  if (typeof v === "string" && /^[1-9][0-9]{0,19}$/.test(v) && BigInt(v) > BigInt(Number.MAX_SAFE_INTEGER) && BigInt(v) <= INT64_MAX) {
    throw new ApiError("bad_request", `lease id ${v} is above 2^53-1, the largest id edgekv grants (docs/kv.md)`);
  }
  return leaseFromBody(v);
}

/**
 * Range end of a body op: `prefix: true` = the prefix range; `end` "" = open end (every key >= key);
 * absent = the single key; start >= end = `bad_request` (C21).
 */
export function rangeEndOf(key: Uint8Array, end: string | Uint8Array | undefined, prefix: boolean | undefined): Uint8Array | undefined {
  if (prefix) {
    if (end !== undefined) throw new ApiError("bad_request", "give end or prefix, not both");
    return key.length === 0 ? OPEN_END : prefixEnd(key);
  }
  if (end === undefined) return undefined;
  const e = keyBytes(end);
  if (e.length === 0) return OPEN_END;
  if (compareBytes(key, e) >= 0) throw new ApiError("bad_request", "empty or inverted range: start must be below end");
  return e;
}

const RESULT_WORDS: Record<string, CompareResult> = { "=": "=", "!=": "!=", "<": "<", ">": ">", equal: "=", notEqual: "!=", less: "<", greater: ">" };

/** Converts a validated txn body op into a KV request op (`delete` is accepted for `deleteRange`). */
export function txnOpFromBody(o: z.infer<typeof opSchema>): RequestOp {
  const key = keyBytes(o.key);
  if (o.op === "put") {
    if (key.length === 0) throw new ApiError("bad_request", "key must not be empty");
    return { op: "put", key: requireUtf8Key(key), value: valueBytes(o.value), lease: leaseFromBody(o.lease), prevKv: o.prevKv };
  }
  const rangeEnd = rangeEndOf(key, o.end, o.prefix);
  if (key.length === 0 && !rangeEnd) throw new ApiError("bad_request", "key must not be empty");
  if (o.op === "range") return { op: "range", key, rangeEnd, limit: o.limit, revision: o.revision, keysOnly: o.keysOnly, countOnly: o.countOnly };
  return { op: "deleteRange", key, rangeEnd, prevKv: o.prevKv };
}

/** Converts a validated compare into a KV compare (value: base64 string / bytes; lease: decimal string or integer). */
export function compareFromBody(c: z.infer<typeof compareSchema>): Compare {
  const key = keyBytes(c.key);
  const rangeEnd = rangeEndOf(key, c.end, c.prefix);
  const result = RESULT_WORDS[c.result];
  const range = rangeEnd ? { rangeEnd } : {};
  if (c.target === "value") {
    if (typeof c.value === "number") throw new ApiError("bad_request", "compare on value needs a base64 string or bytes");
    return { key, ...range, target: "value", result, value: valueBytes(c.value) };
  }
  if (c.value instanceof Uint8Array) throw new ApiError("bad_request", `compare on ${c.target} needs an integer`);
  const n = typeof c.value === "number" ? c.value : c.target === "lease" ? leaseFromBody(c.value) : parseCount(c.target, c.value) ?? 0;
  return { key, ...range, target: c.target, result, value: n };
}

/** JSON shape of a KeyValue: key UTF-8, value base64, lease decimal string. */
export function kvToJson(kv: KeyValue): Record<string, unknown> {
  return { key: fromUtf8(kv.key), value: toBase64(kv.value), createRevision: kv.createRevision, modRevision: kv.modRevision, version: kv.version, lease: String(kv.lease) };
}

/** Converts a result tree for the chosen format: JSON gets `kvToJson` for every KeyValue, CBOR keeps bytes. */
export function encodeResult(x: unknown, cbor: boolean): unknown {
  if (cbor) return x;
  if (Array.isArray(x)) return x.map((v) => encodeResult(v, false));
  if (x instanceof Uint8Array) return fromUtf8(x);
  if (x && typeof x === "object") {
    const o = x as Record<string, unknown>;
    if (o.key instanceof Uint8Array && o.value instanceof Uint8Array && typeof o.modRevision === "number") return kvToJson(o as unknown as KeyValue);
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = encodeResult(v, false);
    return out;
  }
  return x;
}
