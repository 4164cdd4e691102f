/**
 * Types the SDK hands to callers, and their conversion from the API's JSON / CBOR shapes (docs/api.md).
 * Keys are strings (UTF-8 on the wire), values are bytes (`Uint8Array`; `text(value)` decodes UTF-8),
 * lease ids are decimal strings (int64 does not fit a JS number), revisions are numbers.
 */

/** Read consistency: ReadIndex (default), leader lease, or the contacted node's local state. */
export type Consistency = "linearizable" | "lease" | "stale";

/** A stored key (etcd KeyValue). */
export interface KeyValue {
  key: string;
  value: Uint8Array;
  createRevision: number;
  modRevision: number;
  version: number;
  /** "0" = no lease. */
  lease: string;
}

/** Staleness of a `stale` read. */
export interface StaleInfo {
  appliedIndex: number;
  /** ms since the node heard from a leader; undefined if unknown. */
  stalenessMs?: number;
}

/** `get` result: the key plus the store revision it was read at. */
export interface GetResult extends KeyValue {
  /** Store revision when read. */
  revision: number;
  stale?: StaleInfo;
}

/** `range` result. */
export interface RangeResult {
  kvs: KeyValue[];
  /** Keys in the range, ignoring `limit`. */
  count: number;
  /** True when `limit` left keys out. */
  more: boolean;
  revision: number;
}

/** `put` result. */
export interface PutResult {
  revision: number;
  prevKv?: KeyValue;
}

/** `delete` / `deleteRange` result. */
export interface DeleteResult {
  revision: number;
  deleted: number;
  prevKvs?: KeyValue[];
}

/** Which keys: one `key`, a `prefix` ("" = every key), or [start, end) (no end = every key >= start). */
export type KeySelector = { key: string } | { prefix: string } | { start: string; end?: string };

/** A txn compare (etcd Compare). `value`: bytes or text for target "value", a number (lease: decimal string) otherwise. */
export interface TxnCompare {
  key: string;
  target: "value" | "version" | "createRevision" | "modRevision" | "lease";
  result: "=" | "!=" | "<" | ">";
  value: Uint8Array | string | number;
}

/** A txn operation. `end`/`prefix` make delete and range cover a range. */
export type TxnOp =
  | { op: "put"; key: string; value: Uint8Array | string; lease?: string; prevKv?: boolean }
  | { op: "delete"; key: string; end?: string; prefix?: boolean; prevKv?: boolean }
  | { op: "range"; key: string; end?: string; prefix?: boolean; limit?: number; revision?: number; keysOnly?: boolean; countOnly?: boolean };

/** A txn: if every compare holds run `success`, else `failure` (etcd txn semantics). */
export interface TxnRequest {
  compare?: TxnCompare[];
  success?: TxnOp[];
  failure?: TxnOp[];
}

/** One op's result inside a txn result. */
export type TxnOpResult = ({ op: "put" } & PutResult) | ({ op: "deleteRange" } & DeleteResult) | ({ op: "range" } & RangeResult);

/** `txn` result. */
export interface TxnResult {
  succeeded: boolean;
  revision: number;
  responses: TxnOpResult[];
}

/** A lease as the server reports it; TTLs in seconds. */
export interface LeaseStatus {
  id: string;
  ttl: number;
  grantedTtl?: number;
  keys?: string[];
}

/** One watch event. For a delete, `kv` has the key and `modRevision` = the delete's revision. */
export interface WatchEvent {
  type: "put" | "delete";
  kv: KeyValue;
}

/** A watch message: events (ascending revisions; `revision` = the last) or progress (all up to `revision` delivered). */
export type WatchMessage = { type: "events"; revision: number; events: WatchEvent[] } | { type: "progress"; revision: number };

/**
 * One cluster member and the cluster view: the API's own wire types (src/api/service.ts), imported type-only
 * so the SDK keeps no runtime dependency on the server code.
 */
export type { ClusterView, MemberInfo } from "../api/service.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** UTF-8 bytes of text. */
export function bytes(s: string | Uint8Array): Uint8Array {
  return typeof s === "string" ? enc.encode(s) : s;
}

/** Text of UTF-8 bytes (invalid sequences become U+FFFD). */
export function text(b: Uint8Array): string {
  return dec.decode(b);
}

/** Standard base64 of bytes. */
export function toBase64(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  return btoa(s);
}

/** Bytes of standard base64. Throws on invalid input. */
export function fromBase64(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** A KeyValue from its JSON (key text, value base64, lease string) or CBOR (bytes, integer lease) shape. */
export function kvFromWire(w: Record<string, unknown>): KeyValue {
  return {
    key: w.key instanceof Uint8Array ? text(w.key) : String(w.key),
    value: w.value instanceof Uint8Array ? w.value : fromBase64(String(w.value ?? "")),
    createRevision: Number(w.createRevision ?? 0),
    modRevision: Number(w.modRevision ?? 0),
    version: Number(w.version ?? 0),
    lease: String(w.lease ?? "0"),
  };
}

/** A range result from the wire. */
export function rangeFromWire(w: Record<string, unknown>): RangeResult {
  return { kvs: ((w.kvs as Record<string, unknown>[]) ?? []).map(kvFromWire), count: Number(w.count ?? 0), more: Boolean(w.more), revision: Number(w.revision ?? 0) };
}

/** A put / delete / range / txn op result from the wire. */
export function opResultFromWire(w: Record<string, unknown>): TxnOpResult {
  if (w.op === "range") return { op: "range", ...rangeFromWire(w) };
  if (w.op === "deleteRange") {
    const r: TxnOpResult = { op: "deleteRange", revision: Number(w.revision), deleted: Number(w.deleted ?? 0) };
    if (Array.isArray(w.prevKvs)) r.prevKvs = (w.prevKvs as Record<string, unknown>[]).map(kvFromWire);
    return r;
  }
  const r: TxnOpResult = { op: "put", revision: Number(w.revision) };
  if (w.prevKv) r.prevKv = kvFromWire(w.prevKv as Record<string, unknown>);
  return r;
}

/** A txn op in the wire's JSON shape (values base64) or CBOR shape (values bytes). */
export function txnOpToWire(o: TxnOp, cbor: boolean): Record<string, unknown> {
  if (o.op === "put") return { ...o, value: cbor ? bytes(o.value) : toBase64(bytes(o.value)) };
  return { ...o };
}

/** A txn compare in the wire's shape. */
export function compareToWire(c: TxnCompare, cbor: boolean): Record<string, unknown> {
  if (c.target === "value") {
    const v = typeof c.value === "number" ? String(c.value) : c.value;
    return { ...c, value: cbor ? bytes(v) : toBase64(bytes(v)) };
  }
  return { ...c };
}
