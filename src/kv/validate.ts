/**
 * Request validation: shapes, size limits, txn op counts and the txn duplicate-key rule. Pure and
 * state-independent, so the API runs it before proposing and the state machine runs it again at apply
 * (the decoded entry may come from an older or buggy proposer); both give the same KvError.
 */
import { inRange, resolveRange, type KeyRange } from "./store.ts";
import { KvError, type Bytes, type Compare, type KvLimits, type KvRequest, type RangeRequest, type RequestOp } from "./types.ts";

function isUint(n: unknown): n is number {
  return typeof n === "number" && Number.isSafeInteger(n) && n >= 0;
}

function checkKey(key: Bytes, limits: KvLimits): void {
  if (!(key instanceof Uint8Array)) throw new KvError("bad_request", "key must be bytes");
  if (key.length > limits.maxKeyBytes) throw new KvError("key_too_large", `key is ${key.length} bytes; the limit is ${limits.maxKeyBytes}`);
}

function checkRange(key: Bytes, rangeEnd: Bytes | undefined, limits: KvLimits): KeyRange {
  checkKey(key, limits);
  if (rangeEnd !== undefined) checkKey(rangeEnd, limits);
  return resolveRange(key, rangeEnd);
}

function checkLeaseId(id: unknown, allowZero: boolean): void {
  if (!isUint(id) || (!allowZero && id === 0)) throw new KvError("bad_request", `invalid lease id ${String(id)}`);
}

/** Validates a range read (types.ts conventions, limits). Throws KvError `bad_request` / `key_too_large`. */
export function validateRangeRequest(req: RangeRequest, limits: KvLimits): KeyRange {
  const range = checkRange(req.key, req.rangeEnd, limits);
  if (req.limit !== undefined && !isUint(req.limit)) throw new KvError("bad_request", "limit must be a non-negative integer");
  if (req.revision !== undefined && !isUint(req.revision)) throw new KvError("bad_request", "revision must be a non-negative integer");
  return range;
}

function validateCompare(c: Compare, limits: KvLimits): void {
  if (c === null || typeof c !== "object") throw new KvError("bad_request", "compare must be an object");
  checkRange(c.key, c.rangeEnd, limits);
  if (!["=", "!=", "<", ">"].includes(c.result)) throw new KvError("bad_request", `invalid compare result ${String(c.result)}`);
  if (c.target === "value") {
    if (!(c.value instanceof Uint8Array)) throw new KvError("bad_request", "value compare needs bytes");
    if (c.value.length > limits.maxValueBytes) throw new KvError("value_too_large", "compare value too large");
  } else if (["version", "createRevision", "modRevision", "lease"].includes(c.target)) {
    if (typeof c.value !== "number" || !Number.isSafeInteger(c.value)) throw new KvError("bad_request", `${c.target} compare needs an integer`);
  } else {
    throw new KvError("bad_request", `invalid compare target ${String((c as { target: unknown }).target)}`);
  }
}

function validateOps(ops: RequestOp[], limits: KvLimits): void {
  if (!Array.isArray(ops)) throw new KvError("bad_request", "txn branch must be a list");
  if (ops.length > limits.maxTxnOps) throw new KvError("too_many_ops", `txn branch has ${ops.length} ops; the limit is ${limits.maxTxnOps}`);
  for (const op of ops) {
    if (op === null || typeof op !== "object") throw new KvError("bad_request", "txn op must be an object");
    if (op.op === "put" || op.op === "deleteRange" || op.op === "txn") validateRequest(op, limits);
    else if (op.op === "range") validateRangeRequest(op, limits);
    else throw new KvError("bad_request", `invalid txn op ${String((op as { op: unknown }).op)}`);
  }
}

/**
 * Validates one proposed request: shape, key/value sizes (`key_too_large`, `value_too_large`), txn sizes
 * (`too_many_ops`, etcd --max-txn-ops applies to each of compare/success/failure), the txn duplicate-key rule
 * (`duplicate_key_in_txn`, see `checkTxnWrites`), lease ids and TTLs (`bad_request`). Throws the first
 * KvError found; returns nothing when valid. Does not look at state (leases are checked at apply).
 */
export function validateRequest(req: KvRequest, limits: KvLimits): void {
  if (req === null || typeof req !== "object") throw new KvError("bad_request", "request must be an object");
  switch (req.op) {
    case "put":
      checkKey(req.key, limits);
      if (req.key.length === 0) throw new KvError("bad_request", "key is empty");
      if (!(req.value instanceof Uint8Array)) throw new KvError("bad_request", "value must be bytes");
      if (req.value.length > limits.maxValueBytes) {
        throw new KvError("value_too_large", `value is ${req.value.length} bytes; the limit is ${limits.maxValueBytes}`);
      }
      if (req.lease !== undefined) checkLeaseId(req.lease, true);
      return;
    case "deleteRange":
      checkRange(req.key, req.rangeEnd, limits);
      return;
    case "txn":
      if (!Array.isArray(req.compare)) throw new KvError("bad_request", "txn compare must be a list");
      if (req.compare.length > limits.maxTxnOps) throw new KvError("too_many_ops", `txn has ${req.compare.length} compares; the limit is ${limits.maxTxnOps}`);
      for (const c of req.compare) validateCompare(c, limits);
      validateOps(req.success, limits);
      validateOps(req.failure, limits);
      checkTxnWrites(req.success, emptyWrites());
      checkTxnWrites(req.failure, emptyWrites());
      return;
    case "leaseGrant":
      checkLeaseId(req.id, false);
      if (!isUint(req.ttlSeconds) || req.ttlSeconds < 1 || req.ttlSeconds > limits.maxLeaseTtlSeconds) {
        throw new KvError("bad_request", `lease TTL must be an integer in [1, ${limits.maxLeaseTtlSeconds}] seconds`);
      }
      return;
    case "leaseRevoke":
      checkLeaseId(req.id, false);
      return;
    case "leaseExpire":
      if (!Array.isArray(req.ids)) throw new KvError("bad_request", "ids must be a list");
      for (const id of req.ids) checkLeaseId(id, false);
      return;
    case "compact":
      if (!isUint(req.revision)) throw new KvError("bad_request", "revision must be a non-negative integer");
      return;
    default:
      throw new KvError("bad_request", `unknown op ${String((req as { op: unknown }).op)}`);
  }
}

/** Keys put (in order, and as a set of `keyId`s) and ranges deleted so far on one path of a txn. */
interface Writes {
  puts: Bytes[];
  putIds: Set<string>;
  deletes: KeyRange[];
}

function emptyWrites(): Writes {
  return { puts: [], putIds: new Set(), deletes: [] };
}

/**
 * A key's bytes as a string (one char per byte), for set lookups: the duplicate check of a 128-put txn was
 * 128 x 128 byte-array comparisons, run on every node at apply (a top entry of the bulk-load profile).
 */
function keyId(key: Bytes): string {
  let s = "";
  for (let i = 0; i < key.length; i++) s += String.fromCharCode(key[i]!);
  return s;
}

function addPut(w: Writes, key: Bytes, id = keyId(key)): void {
  w.puts.push(key);
  w.putIds.add(id);
}

/**
 * The txn duplicate-key rule (etcd checkIntervals, including the fix of etcd-io/etcd#22445, scenario C21):
 * on one branch, no key may be put twice, and no put may fall inside any deleteRange of the same branch —
 * whatever the order of the ops and whether the delete range is bounded or open-ended ([0] end). Two
 * deleteRanges may overlap (deleting twice is idempotent). A nested txn is checked path by path against
 * everything its enclosing branch writes; after it, both of its branches count as written for the ops that
 * follow it (conservative: a later sibling may not touch a key either nested branch writes). Throws KvError
 * `duplicate_key_in_txn`. Mutates `acc` to include the writes of `ops`.
 */
export function checkTxnWrites(ops: RequestOp[], acc: Writes): void {
  const dup = (what: string) => new KvError("duplicate_key_in_txn", `duplicate key given in txn request: ${what}`);
  for (const op of ops) {
    if (op.op === "put") {
      const id = keyId(op.key);
      if (acc.putIds.has(id)) throw dup("a key is put twice");
      if (acc.deletes.some((d) => inRange(d, op.key))) throw dup("a put falls inside a deleteRange of the same txn");
      addPut(acc, op.key, id);
    } else if (op.op === "deleteRange") {
      const d = resolveRange(op.key, op.rangeEnd);
      if (acc.puts.some((p) => inRange(d, p))) throw dup("a deleteRange covers a key put in the same txn");
      acc.deletes.push(d);
    } else if (op.op === "txn") {
      const s: Writes = { puts: [...acc.puts], putIds: new Set(acc.putIds), deletes: [...acc.deletes] };
      const f: Writes = { puts: [...acc.puts], putIds: new Set(acc.putIds), deletes: [...acc.deletes] };
      checkTxnWrites(op.success, s);
      checkTxnWrites(op.failure, f);
      const nPuts = acc.puts.length;
      const nDels = acc.deletes.length;
      for (const p of [...s.puts.slice(nPuts), ...f.puts.slice(nPuts)]) if (!acc.putIds.has(keyId(p))) addPut(acc, p);
      acc.deletes.push(...s.deletes.slice(nDels), ...f.deletes.slice(nDels));
    }
  }
}
