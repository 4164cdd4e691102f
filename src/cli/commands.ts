/**
 * The `edgekv` CLI commands, each a function of (client, positionals, flags, io) returning an exit code.
 * Human output by default; `--json` prints one JSON document per result (values base64, as the API).
 * Built on the SDK only (src/client), so what the CLI can do the SDK can do.
 */
import { EdgeKvClient, EdgeKvError, text, toBase64, validateTxnRequest, type KeySelector, type KeyValue, type TxnRequest } from "../client/index.ts";

/** Where a command writes, and how it reads stdin (`txn -` as UTF-8 text, `put KEY -` as bytes). */
export interface CliIo {
  out(line: string): void;
  err(line: string): void;
  readStdin(): Promise<string>;
  /** All of stdin, byte for byte (no decoding, no newline handling). */
  readStdinBytes(): Promise<Uint8Array>;
  /** Writes bytes to stdout exactly (no newline, no decoding), for `get KEY --raw`; absent = --raw unsupported. */
  writeBytes?(b: Uint8Array): void;
}

/** How a command reads files: `txn FILE` as UTF-8 text, `put KEY --file PATH` as bytes. Both reject when unreadable. */
export interface CliFiles {
  readFile(path: string): Promise<string>;
  readFileBytes(path: string): Promise<Uint8Array>;
}

/** Parsed flags the commands read (strings as given; booleans present or not). */
export interface CliFlags {
  json?: boolean;
  consistency?: string;
  revision?: string;
  lease?: string;
  "if-match"?: string;
  "if-absent"?: boolean;
  prefix?: string;
  start?: string;
  end?: string;
  limit?: string;
  "keys-only"?: boolean;
  "count-only"?: boolean;
  "from-revision"?: string;
  count?: string;
  keys?: boolean;
  file?: string;
  raw?: boolean;
  once?: boolean;
}

/** A usage error: exit code 2, message printed with the command's help hint. */
export class UsageError extends Error {}

/**
 * A non-negative integer flag (`name` without dashes, shown as `--name`) or positional argument (`name` in
 * capitals, e.g. `TTL_SECONDS`, shown as is); UsageError otherwise.
 */
export function intFlag(name: string, v: string | undefined, what = "a non-negative integer"): number | undefined {
  if (v === undefined) return undefined;
  const label = /^[A-Z_]+$/.test(name) ? name : `--${name}`;
  if (/^[0-9]{16,}$/.test(v)) throw new UsageError(`${label} has more than 15 digits, got ${JSON.stringify(v)}`);
  if (!/^[0-9]{1,15}$/.test(v)) throw new UsageError(`${label} must be ${what}, got ${JSON.stringify(v)}`);
  return Number(v);
}

/** `intFlag` that also refuses 0 (UsageError, exit 2): `--from-revision`, `--timeout-ms`, watch's `--count`. */
export function positiveIntFlag(name: string, v: string | undefined): number | undefined {
  const n = intFlag(name, v, "an integer >= 1");
  if (n === 0) throw new UsageError(`--${name} must be at least 1, got "0"`);
  return n;
}

/** Largest lease id: an int64 like etcd's (docs/api.md). */
const MAX_LEASE_ID = BigInt("9223372036854775807");

/** Largest lease TTL, seconds: the server's bound (2^31 - 1). */
const MAX_LEASE_TTL_SEC = 2 ** 31 - 1;

/**
 * A lease id given with `--lease`: a positive decimal integer (docs/api.md, scenario C08), checked here so that
 * a malformed one is a usage error (exit 2) like every other bad argument, not the server's bad_request
 * (exit 1; new-user trial U7). The server's parseLeaseId (src/api/wire.ts) also checks the int64 range.
 */
export function leaseIdFlag(v: string | undefined, label = "--lease"): string | undefined {
  if (v === undefined) return undefined;
  if (!/^[1-9][0-9]*$/.test(v)) throw new UsageError(`${label} must be a positive decimal integer (a lease id), got ${JSON.stringify(v)}`);
  if (BigInt(v) > MAX_LEASE_ID) throw new UsageError(`${label} is above 2^63-1, the largest lease id, got ${JSON.stringify(v)}`);
  return v;
}

function consistency(f: CliFlags): "linearizable" | "lease" | "stale" | undefined {
  const c = f.consistency;
  if (c === undefined) return undefined;
  if (c === "linearizable" || c === "lease" || c === "stale") return c;
  throw new UsageError("--consistency must be linearizable, lease or stale");
}

function need(pos: string[], n: number, usage: string): void {
  if (pos.length !== n) throw new UsageError(`usage: ${usage}`);
}

/** The key selector of `range`/`del`/`watch`: KEY, --prefix P, or --start A [--end B]. */
function selector(pos: string[], f: CliFlags, usage: string): KeySelector {
  const given = [pos.length > 0, f.prefix !== undefined, f.start !== undefined].filter(Boolean).length;
  if (given !== 1 || pos.length > 1 || (f.end !== undefined && f.start === undefined)) throw new UsageError(`usage: ${usage}`);
  if (pos.length === 1) return { key: pos[0] };
  if (f.prefix !== undefined) return { prefix: f.prefix };
  return { start: f.start!, ...(f.end !== undefined ? { end: f.end } : {}) };
}

/** JSON of a KeyValue for `--json` output (value base64, as the API). */
function kvJson(kv: KeyValue): Record<string, unknown> {
  return { ...kv, value: toBase64(kv.value) };
}

const show = (io: CliIo, v: unknown) => io.out(JSON.stringify(v, (_k, x) => (x instanceof Uint8Array ? toBase64(x) : x)));

/**
 * `get KEY`: prints the value (human, as UTF-8 text plus a newline), the KeyValue (--json), or the value's
 * bytes exactly (--raw: no newline, no decoding, so binary values survive `> file`). Exit 1 with `not_found`
 * when absent; --raw with --json is a usage error (exit 2).
 */
export async function cmdGet(c: EdgeKvClient, pos: string[], f: CliFlags, io: CliIo): Promise<number> {
  // etcdctl's `get --prefix P` (or a range) is `edgekv range` here: say so instead of a bare usage line (U7).
  if (f.prefix !== undefined || f.start !== undefined) throw new UsageError("get reads one key; to list a prefix or a range use `edgekv range --prefix P` or `edgekv range --start A [--end B]`");
  need(pos, 1, "edgekv get KEY [--consistency C] [--revision N] [--raw]");
  if (f.raw && f.json) throw new UsageError("--raw and --json are mutually exclusive");
  if (f.raw && !io.writeBytes) throw new UsageError("--raw is not available here (no byte output)");
  const r = await c.get(pos[0], { consistency: consistency(f), revision: intFlag("revision", f.revision) });
  if (!r) throw new EdgeKvError("not_found", `key ${JSON.stringify(pos[0])} not found`, 404);
  if (f.raw) io.writeBytes!(r.value);
  else if (f.json) show(io, kvJson(r));
  else io.out(text(r.value));
  return 0;
}

/** Usage line of `put`. */
const PUT_USAGE = "edgekv put KEY VALUE|- [--lease ID] [--if-match REV | --if-absent]  or  edgekv put KEY --file PATH [...]";

/**
 * The value of `put`: the VALUE argument as UTF-8, `-` = all of stdin, or `--file PATH` = the file's
 * bytes; stdin and files are taken byte for byte (a trailing newline is part of the value, as with
 * `curl --data-binary`). UsageError (exit 2): no value, a value and --file both, an unreadable file.
 */
async function putValue(pos: string[], f: CliFlags, io: CliIo, files: CliFiles): Promise<Uint8Array | string> {
  if (f.file !== undefined) {
    if (pos.length === 2) throw new UsageError(`give the value as an argument, - (stdin) or --file PATH, not both (got ${JSON.stringify(pos[1])} and --file ${f.file})`);
    need(pos, 1, PUT_USAGE);
    try {
      return await files.readFileBytes(f.file);
    } catch (err) {
      throw new UsageError(`cannot read ${f.file}: ${(err as Error)?.message ?? String(err)}`);
    }
  }
  need(pos, 2, PUT_USAGE);
  return pos[1] === "-" ? await io.readStdinBytes() : pos[1];
}

/** `put KEY VALUE|-` or `put KEY --file PATH`: prints the new revision. */
export async function cmdPut(c: EdgeKvClient, pos: string[], f: CliFlags, io: CliIo, files: CliFiles): Promise<number> {
  // Both together can never succeed (a key with a revision exists); refuse rather than send a doomed write.
  if (f["if-match"] !== undefined && f["if-absent"]) throw new UsageError("--if-match and --if-absent are mutually exclusive");
  // Flags first: `put k - --lease abc` must not wait for stdin to end before it is refused.
  const opts = { lease: leaseIdFlag(f.lease), ifMatch: intFlag("if-match", f["if-match"]), ifAbsent: f["if-absent"] };
  const value = await putValue(pos, f, io, files);
  const r = await c.put(pos[0], value, opts);
  if (f.json) show(io, r);
  else io.out(`OK revision ${r.revision}`);
  return 0;
}

/** `del KEY | --prefix P | --start A [--end B]`: prints how many keys were deleted. */
export async function cmdDel(c: EdgeKvClient, pos: string[], f: CliFlags, io: CliIo): Promise<number> {
  const usage = "edgekv del KEY [--if-match REV] | --prefix P | --start A [--end B]";
  const sel = selector(pos, f, usage);
  // A range delete has no condition here (it was ignored: `del --prefix p/ --if-match 1` deleted every key);
  // a conditional range delete is a txn with a compare.
  if (!("key" in sel) && f["if-match"] !== undefined) throw new UsageError("--if-match applies to one KEY, not a range; for a conditional range delete use `edgekv txn` with a compare");
  const r = "key" in sel ? await c.delete(sel.key, { ifMatch: intFlag("if-match", f["if-match"]) }) : await c.deleteRange(sel);
  if (f.json) show(io, r);
  else io.out(`deleted ${r.deleted} (revision ${r.revision})`);
  return 0;
}

/** `range --prefix P | --start A [--end B]`: prints `key = value` lines (or keys / the count). */
export async function cmdRange(c: EdgeKvClient, pos: string[], f: CliFlags, io: CliIo): Promise<number> {
  const sel = selector(pos, f, "edgekv range --prefix P | --start A [--end B] [--limit N] [--keys-only] [--count-only] [--revision N] [--consistency C]");
  const r = await c.range(sel, { limit: intFlag("limit", f.limit), revision: intFlag("revision", f.revision), keysOnly: f["keys-only"], countOnly: f["count-only"], consistency: consistency(f) });
  if (f.json) show(io, { ...r, kvs: r.kvs.map(kvJson) });
  else if (f["count-only"]) io.out(String(r.count));
  else {
    for (const kv of r.kvs) io.out(f["keys-only"] ? kv.key : `${kv.key} = ${text(kv.value)}`);
    if (r.more) io.out(`... ${r.count - r.kvs.length} more`);
  }
  return 0;
}

/** `txn FILE|-`: runs the txn JSON (SDK shape, values as text) from a file or stdin; exit 3 when not succeeded. */
export async function cmdTxn(c: EdgeKvClient, pos: string[], f: CliFlags, io: CliIo, readFile: (p: string) => Promise<string>): Promise<number> {
  need(pos, 1, "edgekv txn FILE|-   (JSON: {compare:[...], success:[...], failure:[...]})");
  let src: string;
  if (pos[0] === "-") src = await io.readStdin();
  else {
    try {
      src = await readFile(pos[0]);
    } catch (err) {
      // A missing or unreadable file is the caller's mistake, not a server or internal error.
      throw new UsageError(`cannot read ${pos[0]}: ${(err as Error)?.message ?? String(err)}`);
    }
  }
  let req: TxnRequest;
  try {
    req = JSON.parse(src) as TxnRequest;
  } catch {
    throw new UsageError("txn: the input is not valid JSON");
  }
  try {
    // Refuse what the SDK would otherwise reshape (unknown fields, non-text put values): exit 2, not a silent write.
    req = validateTxnRequest(req);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const r = await c.txn(req);
  if (f.json) show(io, r);
  else {
    io.out(`${r.succeeded ? "SUCCEEDED" : "FAILED"} revision ${r.revision}`);
    for (const op of r.responses) {
      if (op.op === "range") for (const kv of op.kvs) io.out(`  ${kv.key} = ${text(kv.value)}`);
      else if (op.op === "deleteRange") io.out(`  deleted ${op.deleted}`);
      else io.out(`  put revision ${op.revision}`);
    }
  }
  return r.succeeded ? 0 : 3;
}

/** `lease grant TTL | keepalive ID [--once] | revoke ID | ttl ID [--keys]`; `signal` ends a keepalive loop (Ctrl-C). */
export async function cmdLease(c: EdgeKvClient, pos: string[], f: CliFlags, io: CliIo, signal?: AbortSignal): Promise<number> {
  const [sub, arg] = pos;
  const usage = "edgekv lease grant TTL_SECONDS | keepalive ID [--once] | revoke ID | ttl ID [--keys]";
  if (sub === "keep-alive" || sub === "timetolive") throw new UsageError(`etcdctl's \`lease ${sub}\` is \`edgekv lease ${sub === "keep-alive" ? "keepalive" : "ttl"} ID\` here; usage: ${usage}`);
  if (pos.length !== 2 || !["grant", "keepalive", "revoke", "ttl"].includes(sub)) throw new UsageError(`usage: ${usage}`);
  if (f.once && sub !== "keepalive") throw new UsageError("--once applies to lease keepalive only");
  if (f.keys && sub !== "ttl") throw new UsageError("--keys applies to lease ttl only");
  // A lease id is a positive decimal integer (docs/api.md, scenario C08): a malformed one is a usage error
  // here, before any endpoint is tried (it used to fail as `network:` when no node was up). Same shape as
  // the server's parseLeaseId (src/api/wire.ts), which also checks the int64 range.
  if (sub !== "grant") leaseIdFlag(arg, "ID");
  if (sub === "grant") {
    const ttl = intFlag("TTL_SECONDS", arg)!;
    if (ttl < 1) throw new UsageError(`TTL_SECONDS must be at least 1, got ${ttl}`);
    if (ttl > MAX_LEASE_TTL_SEC) throw new UsageError(`TTL_SECONDS must be at most ${MAX_LEASE_TTL_SEC}, got ${ttl}`);
    const r = await c.leaseGrant(ttl);
    if (f.json) show(io, r);
    else io.out(`lease ${r.id} granted with TTL ${r.ttl}s`);
  } else if (sub === "keepalive") {
    if (f.once) showKeptAlive(io, f, await c.leaseKeepAlive(arg));
    else return await keepAliveLoop(c, arg, f, io, signal);
  } else if (sub === "revoke") {
    const r = await c.leaseRevoke(arg);
    if (f.json) show(io, r);
    else io.out(`lease ${r.id} revoked, ${r.deleted} keys deleted (revision ${r.revision})`);
  } else if (sub === "ttl") {
    const r = await c.leaseTimeToLive(arg, { keys: f.keys });
    if (f.json) show(io, r);
    else io.out(`lease ${r.id} remaining ${r.ttl}s of ${r.grantedTtl}s${r.keys ? `, keys: ${r.keys.join(" ")}` : ""}`);
  } else throw new UsageError(`usage: ${usage}`);
  return 0;
}

function showKeptAlive(io: CliIo, f: CliFlags, r: { id: string; ttl: number }): void {
  if (f.json) show(io, r);
  else io.out(`lease ${r.id} kept alive, TTL ${r.ttl}s`);
}

/** Shortest pause between two renewals, ms (a 1 s TTL renews every 333 ms; never a busy loop). */
const MIN_RENEW_INTERVAL_MS = 100;

/** Resolves after `ms`, or at once (false) when `signal` aborts. */
function pause(ms: number, signal?: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(false);
    const onAbort = () => {
      clearTimeout(t);
      resolve(false);
    };
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve(true);
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * `lease keepalive ID`: renews the lease at a third of its TTL (etcdctl `lease keep-alive` renews at TTL/3
 * too), one output line per renewal, until `signal` aborts (exit 0) or the lease is gone: `lease_not_found`
 * (expired or revoked) is thrown, so the CLI exits 1 with that code. A failed renewal of another kind (no
 * leader, node down, after the SDK's own retries) is reported on stderr and tried again at the next turn;
 * once no renewal has succeeded for a whole TTL the lease has expired on the server, and the last error is
 * thrown. Bounded: every call has a deadline of at most one TTL, and the loop ends when the lease does.
 */
async function keepAliveLoop(c: EdgeKvClient, id: string, f: CliFlags, io: CliIo, signal?: AbortSignal): Promise<number> {
  let ttlMs = 0;
  let lastRenewedAtMs = Date.now();
  for (;;) {
    try {
      // The first call has no TTL yet: the client's own deadline applies.
      const r = await c.leaseKeepAlive(id, { signal, ...(ttlMs > 0 ? { timeoutMs: ttlMs } : {}) });
      lastRenewedAtMs = Date.now();
      ttlMs = r.ttl * 1000;
      showKeptAlive(io, f, r);
    } catch (err) {
      if (signal?.aborted) return 0;
      if (!(err instanceof EdgeKvError) || err.code === "lease_not_found" || ttlMs === 0 || Date.now() - lastRenewedAtMs >= ttlMs) throw err;
      io.err(`warning: lease ${id} not renewed: ${err.code}: ${err.message}; retrying`);
    }
    if (!(await pause(Math.max(MIN_RENEW_INTERVAL_MS, Math.floor(ttlMs / 3)), signal))) return 0;
  }
}

/** `watch KEY | --prefix P | --start A [--end B] [--from-revision N] [--count N]`: prints events until N events or Ctrl-C. */
export async function cmdWatch(c: EdgeKvClient, pos: string[], f: CliFlags, io: CliIo, signal?: AbortSignal): Promise<number> {
  const sel = selector(pos, f, "edgekv watch KEY | --prefix P | --start A [--end B] [--from-revision N] [--count N]");
  const limit = positiveIntFlag("count", f.count); // 0 would watch without end: refused
  let seen = 0;
  const ac = new AbortController();
  signal?.addEventListener("abort", () => ac.abort(), { once: true });
  for await (const m of c.watch(sel, { fromRevision: positiveIntFlag("from-revision", f["from-revision"]), signal: ac.signal })) {
    if (m.type !== "events") continue;
    for (const e of m.events) {
      if (f.json) show(io, { type: e.type, kv: kvJson(e.kv) });
      else io.out(e.type === "put" ? `PUT ${e.kv.key} = ${text(e.kv.value)} (revision ${e.kv.modRevision})` : `DELETE ${e.kv.key} (revision ${e.kv.modRevision})`);
      if (limit !== undefined && ++seen >= limit) {
        ac.abort();
        return 0;
      }
    }
  }
  return 0;
}

/** `members [list] | add ID PEER_URL CLIENT_URL | promote ID | remove ID | transfer-leader ID`. */
export async function cmdMembers(c: EdgeKvClient, pos: string[], f: CliFlags, io: CliIo): Promise<number> {
  const [sub = "list", ...args] = pos;
  const usage = "edgekv members [list] | add ID PEER_URL CLIENT_URL | promote ID | remove ID | transfer-leader ID";
  let view;
  if (sub === "list" && args.length === 0) view = await c.cluster();
  else if (sub === "add" && args.length === 3) view = await c.addLearner(args[0], args[1], args[2]);
  else if (sub === "promote" && args.length === 1) view = await c.promote(args[0]);
  else if (sub === "remove" && args.length === 1) view = await c.removeMember(args[0]);
  else if (sub === "transfer-leader" && args.length === 1) view = await c.transferLeader(args[0]);
  else throw new UsageError(`usage: ${usage}`);
  if (f.json) show(io, view.members);
  else {
    io.out("ID\tROLE\tSTATUS\tLEADER\tCLIENT URL\tPEER URL");
    for (const m of view.members) io.out(`${m.id}\t${m.role}\t${m.status}\t${m.isLeader ? "*" : ""}\t${m.clientUrl}\t${m.peerUrl}`);
  }
  return 0;
}

/**
 * `status`: the cluster view of each endpoint (leader, term, commit/applied index, revision), each asked within
 * `timeoutMs` (`--timeout-ms`, default 5000 ms here: one slow node should not hold the table). Exit 1 if any fails.
 */
export async function cmdStatus(endpoints: string[], make: (endpoint: string) => EdgeKvClient, f: CliFlags, io: CliIo, timeoutMs = 5000): Promise<number> {
  let code = 0;
  const rows: unknown[] = [];
  if (!f.json) io.out("ENDPOINT\tID\tLEADER\tTERM\tCOMMIT\tAPPLIED\tREVISION");
  for (const e of endpoints) {
    try {
      const v = await make(e).cluster({ timeoutMs });
      rows.push({ endpoint: e, ...v });
      if (!f.json) io.out(`${e}\t${v.selfId}\t${v.leaderId || "-"}\t${v.term}\t${v.commitIndex}\t${v.appliedIndex}\t${v.revision}`);
    } catch (err) {
      code = 1;
      const msg = err instanceof EdgeKvError ? `${err.code}: ${err.message}` : String(err);
      rows.push({ endpoint: e, error: msg });
      if (!f.json) io.out(`${e}\terror ${msg}`);
    }
  }
  if (f.json) show(io, rows);
  return code;
}

/** `compact REVISION`. */
export async function cmdCompact(c: EdgeKvClient, pos: string[], f: CliFlags, io: CliIo): Promise<number> {
  need(pos, 1, "edgekv compact REVISION");
  const revision = intFlag("REVISION", pos[0])!;
  // Revision 0 is before the first write: there is nothing below it to discard (etcd refuses it too).
  if (revision < 1) throw new UsageError(`REVISION must be at least 1, got ${JSON.stringify(pos[0])}`);
  const r = await c.compact(revision);
  if (f.json) show(io, r);
  else io.out(`compacted up to revision ${r.compactRevision ?? pos[0]}`);
  return 0;
}
