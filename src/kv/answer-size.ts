/**
 * The size of a read's answer, measured before it is built: a range (or the ranges and `prevKv` deletes of
 * a txn) is summed from key and value lengths alone (KvStore.rangeSize), so an answer above the node's
 * `maxResponseBytes` is refused before any value is loaded or encoded. Why: one 48 MB txn answer held a
 * leader's event loop for 10-13 s (reading, JSON-encoding and writing it) and cost a leader change each
 * time (docs/nemesis.md, break session); etcd bounds answers the same way with gRPC's message size limits.
 *
 * Two places use it. Before proposing, the node measures a txn or `prevKv` delete on its own state
 * (`answerBytes`), which saves proposing a hopeless request but is only an estimate: writes that land
 * before the txn applies can grow its reads (a 133 KB answer under a 64 KB cap, docs/nemesis.md). So the
 * proposing node also puts its cap in the command (`Command.maxAnswerBytes`) and apply holds the request to
 * it with an `AnswerBudget`: every read of the branch is measured just before it runs, on the state it
 * will read, and the first one past the cap fails the whole request. The cap travels in the log entry,
 * never read from a replica's config, so every replica answers the same.
 *
 * Pure (no clock, no I/O besides the store's SQL): the limit is a parameter.
 */
import { compareHolds, type AnswerMeter } from "./ops.ts";
import type { KvStore } from "./store.ts";
import { validateRangeRequest } from "./validate.ts";
import { KvError, type KvLimits, type RangeRequest, type RequestOp } from "./types.ts";

/**
 * Bytes counted per key of an answer besides its key and value, bytes: the revision fields, lease and the
 * JSON around them (the same allowance as a watch page, KvStore.eventsFitting).
 */
export const ANSWER_KEY_OVERHEAD_BYTES = 64;

/**
 * Bytes of the kvs a range read would answer: for each of the first `limit` keys its key + value length
 * (key only with `keysOnly`) + ANSWER_KEY_OVERHEAD_BYTES; 0 for `countOnly`. A read the store would refuse
 * (bad range, compacted or future revision) measures 0 here, so the read itself reports its own error.
 * One query for a read of the current state; a past `revision` also reads the store and compact revisions.
 * `storeRevision` and `liveIncludesPending` mean what they mean for `readRange` (ops.ts): inside a txn
 * being applied the store's meta revision is not yet the batch's, and the live table holds the txn's own
 * earlier writes, so a read at the store revision is measured from history as `readRange` reads it.
 */
export function rangeAnswerBytes(store: KvStore, req: RangeRequest, limits: KvLimits, storeRevision?: number, liveIncludesPending = false): number {
  if (req.countOnly) return 0;
  let range;
  try {
    range = validateRangeRequest(req, limits);
  } catch (err) {
    if (err instanceof KvError) return 0;
    throw err;
  }
  let rev = req.revision ?? 0;
  if (rev > 0) {
    const current = storeRevision ?? store.revision();
    if (rev > current || rev < store.compactRevision()) return 0;
    if (rev === current && !liveIncludesPending) rev = 0; // the live table, as readRange reads it
  }
  const { keys, bytes } = store.rangeSize(range, rev, req.limit ?? 0, req.keysOnly === true);
  return bytes + keys * ANSWER_KEY_OVERHEAD_BYTES;
}

/**
 * The apply-time cap of one request (`Command.maxAnswerBytes`): `beforeRead` measures each read of a txn
 * branch (and each `prevKv` delete or put) with `rangeAnswerBytes` on the state it is about to read, adds it to
 * the bytes of the request's earlier reads, and throws KvError `response_too_large` as soon as the sum is
 * above `maxAnswerBytes`, before that read loads any value. The state machine runs the request in a
 * savepoint, so the throw undoes the branch's earlier writes: nothing is applied and the revision stays.
 * Deterministic: same entries, same state, same cap -> same verdict on every replica.
 */
export class AnswerBudget implements AnswerMeter {
  /** Bytes of the reads measured so far (key + value + ANSWER_KEY_OVERHEAD_BYTES per key). */
  usedBytes = 0;

  constructor(
    private readonly store: KvStore,
    private readonly limits: KvLimits,
    /** The cap carried in the command, bytes (the proposing node's maxResponseBytes). */
    readonly maxAnswerBytes: number,
  ) {}

  /** See the class comment. `storeRevision`: the committed store revision the read is checked against. */
  beforeRead(req: RangeRequest, storeRevision: number): void {
    this.usedBytes += rangeAnswerBytes(this.store, req, this.limits, storeRevision, true);
    if (this.usedBytes <= this.maxAnswerBytes) return;
    throw new KvError(
      "response_too_large",
      `when applied, the answer would hold at least ${this.usedBytes} bytes of keys and values (writes since it was proposed or its own writes grew its reads), ` +
        `above the limit of ${this.maxAnswerBytes} bytes (maxResponseBytes); nothing was applied; read fewer keys: set limit and page on from the last key returned, or use keysOnly / countOnly`,
    );
  }
}

/**
 * The cap a proposed request must carry (`Command.maxAnswerBytes`): `maxResponseBytes` when the request's
 * answer could exceed it (`answerBytesBound` above it), else undefined, so puts, plain deletes and
 * conditional puts with one-key reads carry no extra bytes in the log (their answer is bounded anyway).
 */
export function answerCapToCarry(op: RequestOp, limits: KvLimits, maxResponseBytes: number): number | undefined {
  return answerBytesBound(op, limits) > maxResponseBytes ? maxResponseBytes : undefined;
}

/**
 * Bytes of the kvs a request op would answer, on the store's current state: a range as `rangeAnswerBytes`;
 * a deleteRange with `prevKv` its live keys with values; a txn the ops of the branch its compares choose
 * now (nested txns likewise); a put with `prevKv` its key's live value (0 without `prevKv`). An
 * estimate for a txn: its ranges may also see its own earlier writes, and the state may change before it
 * applies; apply holds it to the exact figure (`AnswerBudget`).
 */
export function answerBytes(store: KvStore, op: RequestOp, limits: KvLimits): number {
  switch (op.op) {
    case "range":
      return rangeAnswerBytes(store, op, limits);
    case "deleteRange":
      return op.prevKv ? rangeAnswerBytes(store, { key: op.key, rangeEnd: op.rangeEnd }, limits) : 0;
    case "put":
      return op.prevKv ? rangeAnswerBytes(store, { key: op.key }, limits) : 0;
    case "txn": {
      let succeeded: boolean;
      try {
        succeeded = op.compare.every((c) => compareHolds(store, c));
      } catch (err) {
        if (err instanceof KvError) return 0;
        throw err;
      }
      let total = 0;
      for (const x of succeeded ? op.success : op.failure) total += answerBytes(store, x, limits);
      return total;
    }
    default:
      return 0;
  }
}

/**
 * An upper bound of `answerBytes` from the request alone, without reading the store: a single-key range
 * (no `rangeEnd`) is at most maxKeyBytes + maxValueBytes + ANSWER_KEY_OVERHEAD_BYTES, and so is a put with
 * `prevKv` or a one-key `prevKv` delete (a put without it 0), a txn the sum over both branches, any multi-key range or `prevKv` delete unbounded (Infinity). Lets the common
 * requests (one-key GET, conditional PUT) skip the measuring queries.
 */
export function answerBytesBound(op: RangeRequest | RequestOp, limits: KvLimits): number {
  if (!("op" in op) || op.op === "range") {
    if (op.countOnly) return 0;
    return op.rangeEnd === undefined || op.rangeEnd.length === 0 ? limits.maxKeyBytes + limits.maxValueBytes + ANSWER_KEY_OVERHEAD_BYTES : Infinity;
  }
  if (op.op === "deleteRange") return !op.prevKv ? 0 : op.rangeEnd === undefined || op.rangeEnd.length === 0 ? limits.maxKeyBytes + limits.maxValueBytes + ANSWER_KEY_OVERHEAD_BYTES : Infinity;
  // A txn of many prevKv puts answers one previous value each: 128 of 1 MiB pass a 16 MiB cap.
  if (op.op === "put") return op.prevKv ? limits.maxKeyBytes + limits.maxValueBytes + ANSWER_KEY_OVERHEAD_BYTES : 0;
  if (op.op === "txn") {
    let total = 0;
    for (const x of op.success) total += answerBytesBound(x, limits);
    for (const x of op.failure) total += answerBytesBound(x, limits);
    return total;
  }
  return 0;
}

/**
 * Throws KvError `response_too_large` when `bytes` (an `answerBytes` figure) is above `maxResponseBytes`;
 * the message names both and how to read less (`limit` and paging from the last key, etcd's pagination).
 */
export function checkAnswerBytes(bytes: number, maxResponseBytes: number): void {
  if (bytes <= maxResponseBytes) return;
  throw new KvError(
    "response_too_large",
    `the answer would hold about ${bytes} bytes of keys and values, above the limit of ${maxResponseBytes} bytes (maxResponseBytes); ` +
      `read fewer keys: set limit and page on from the last key returned, or use keysOnly / countOnly`,
  );
}
