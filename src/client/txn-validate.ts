/**
 * Checks a txn request before the SDK rebuilds it for the wire. The SDK copies only the fields it knows, so
 * without this check a misspelled field (`sucess`) vanished and the server ran an empty txn, and a JSON
 * number as a put value became "" (user trial u1, items 1, 2, 4). Shapes follow `TxnRequest` (types.ts) and
 * etcd txn semantics; anything else is refused rather than guessed at.
 */
import { BadRequestError } from "./errors.ts";
import type { TxnCompare, TxnOp, TxnRequest } from "./types.ts";

const TOP_FIELDS = new Set(["compare", "success", "failure"]);
const COMPARE_FIELDS = new Set(["key", "target", "result", "value"]);
const TARGETS = new Set(["value", "version", "createRevision", "modRevision", "lease"]);
const RESULTS = new Set(["=", "!=", "<", ">"]);
/** Allowed fields of each op kind, with the type each optional one must have. */
const OP_FIELDS: Record<string, Record<string, "string" | "boolean" | "number" | "lease" | "value">> = {
  put: { op: "string", key: "string", value: "value", lease: "lease", prevKv: "boolean" },
  delete: { op: "string", key: "string", end: "string", prefix: "boolean", prevKv: "boolean" },
  range: { op: "string", key: "string", end: "string", prefix: "boolean", limit: "number", revision: "number", keysOnly: "boolean", countOnly: "boolean" },
};

/** A client-side bad request: code `bad_request`, status 0 (nothing was sent). */
function bad(message: string): BadRequestError {
  return new BadRequestError("bad_request", message, 0);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function describeValue(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  return typeof v === "object" ? "an object" : `a ${typeof v} (${JSON.stringify(v)})`;
}

function checkOp(o: unknown, where: string): void {
  if (!isObject(o)) throw bad(`txn: ${where} must be an object like {"op":"put","key":"k","value":"v"}, got ${describeValue(o)}`);
  const fields = typeof o.op === "string" ? OP_FIELDS[o.op] : undefined;
  if (!fields || !Object.hasOwn(OP_FIELDS, o.op as string)) throw bad(`txn: ${where}.op must be "put", "delete" or "range", got ${o.op === undefined ? "nothing" : describeValue(o.op)}`);
  if (typeof o.key !== "string") throw bad(`txn: ${where}.key must be a string, got ${o.key === undefined ? "nothing" : describeValue(o.key)}`);
  if (o.op === "put" && o.value === undefined) throw bad(`txn: ${where}.value is missing (a put needs a string or Uint8Array value)`);
  for (const [name, v] of Object.entries(o)) {
    const kind = Object.hasOwn(fields, name) ? fields[name] : undefined;
    if (!kind) throw bad(`txn: ${where} has unknown field ${JSON.stringify(name)} (a ${o.op} takes ${Object.keys(fields).join(", ")})`);
    if (v === undefined) continue;
    const ok =
      kind === "value" ? typeof v === "string" || v instanceof Uint8Array
      : kind === "lease" ? typeof v === "string" || (typeof v === "number" && Number.isSafeInteger(v) && v >= 0)
      : kind === "number" ? typeof v === "number" && Number.isSafeInteger(v) && v >= 0
      : typeof v === kind;
    if (!ok) {
      const want = kind === "value" ? "a string or Uint8Array (put the text in quotes)" : kind === "lease" ? "a lease id (decimal string)" : kind === "number" ? "a non-negative integer" : `a ${kind}`;
      throw bad(`txn: ${where}.${name} must be ${want}, got ${describeValue(v)}`);
    }
  }
}

function checkCompare(c: unknown, where: string): void {
  if (!isObject(c)) throw bad(`txn: ${where} must be an object like {"key":"k","target":"version","result":"=","value":0}, got ${describeValue(c)}`);
  for (const name of Object.keys(c)) if (!COMPARE_FIELDS.has(name)) throw bad(`txn: ${where} has unknown field ${JSON.stringify(name)} (a compare takes key, target, result, value)`);
  if (typeof c.key !== "string") throw bad(`txn: ${where}.key must be a string, got ${c.key === undefined ? "nothing" : describeValue(c.key)}`);
  if (typeof c.target !== "string" || !TARGETS.has(c.target)) throw bad(`txn: ${where}.target must be one of ${[...TARGETS].join(", ")}, got ${c.target === undefined ? "nothing" : describeValue(c.target)}`);
  if (typeof c.result !== "string" || !RESULTS.has(c.result)) throw bad(`txn: ${where}.result must be one of ${[...RESULTS].join(" ")}, got ${c.result === undefined ? "nothing" : describeValue(c.result)}`);
  const v = c.value;
  // A value compare takes bytes or text only: a number used to be sent as its decimal text (5 matched "5"),
  // while the message below named only strings and bytes (user trial u5).
  const ok = c.target === "value" ? typeof v === "string" || v instanceof Uint8Array : typeof v === "string" || (typeof v === "number" && Number.isFinite(v));
  if (!ok) throw bad(`txn: ${where}.value must be ${c.target === "value" ? "a string or Uint8Array" : "a number"}, got ${v === undefined ? "nothing" : describeValue(v)}`);
}

/**
 * Returns `value` when it is a string or a Uint8Array (what `put` stores); throws `BadRequestError` (code
 * `bad_request`, status 0, nothing sent) otherwise. JavaScript callers could pass null, a number or an object,
 * which `put` used to store as "", "5" or "[object Object]" while a txn refused the same value.
 */
export function checkPutValue(value: unknown): Uint8Array | string {
  if (typeof value === "string" || value instanceof Uint8Array) return value;
  throw bad(`put: value must be a string or Uint8Array, got ${value === undefined ? "nothing" : describeValue(value)}`);
}

/**
 * Returns `req` typed as a `TxnRequest` when it has exactly that shape: an object with only `compare`,
 * `success`, `failure` (each an array when present); compares with key/target/result/value; ops with the
 * fields of their kind, a put's value a string or Uint8Array. Throws `BadRequestError` (code `bad_request`,
 * status 0, nothing sent) naming the first offending field otherwise: unknown fields, wrong types,
 * missing fields, null.
 */
export function validateTxnRequest(req: unknown): TxnRequest {
  if (!isObject(req)) throw bad(`txn: the request must be an object {"compare":[...],"success":[...],"failure":[...]}, got ${req === undefined ? "nothing" : describeValue(req)}`);
  for (const name of Object.keys(req)) if (!TOP_FIELDS.has(name)) throw bad(`txn: unknown field ${JSON.stringify(name)} (a txn takes compare, success, failure)`);
  for (const name of TOP_FIELDS) {
    const list = req[name];
    if (list === undefined) continue;
    if (!Array.isArray(list)) throw bad(`txn: ${name} must be an array, got ${describeValue(list)}`);
    list.forEach((x, i) => (name === "compare" ? checkCompare(x, `compare[${i}]`) : checkOp(x, `${name}[${i}]`)));
  }
  return req as { compare?: TxnCompare[]; success?: TxnOp[]; failure?: TxnOp[] };
}
