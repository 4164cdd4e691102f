/**
 * KV command codec: the bytes in a normal Raft entry's `data` are the CBOR encoding (settings in cbor.ts)
 * of a `Command` from src/kv/types.ts. Decoding validates the whole shape with zod, so a corrupt or foreign
 * entry becomes a `CodecError("malformed")` naming the bad field — the KV apply loop reports it as that
 * entry's `bad_request` instead of crashing. Keys and values decode as views into `bytes` (no copy).
 */
import { z } from "zod";
import type { Command, RequestOp } from "../kv/types.ts";
import { CodecError, decodeCbor, encodeCbor } from "./cbor.ts";

const bytes = z.instanceof(Uint8Array);
const count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const positive = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
const compareResult = z.enum(["=", "!=", "<", ">"]);

const put = z.object({ op: z.literal("put"), key: bytes, value: bytes, lease: count.optional(), prevKv: z.boolean().optional() });
const deleteRange = z.object({ op: z.literal("deleteRange"), key: bytes, rangeEnd: bytes.optional(), prevKv: z.boolean().optional() });
const range = z.object({
  op: z.literal("range"),
  key: bytes,
  rangeEnd: bytes.optional(),
  limit: count.optional(),
  revision: count.optional(),
  countOnly: z.boolean().optional(),
  keysOnly: z.boolean().optional(),
});
const compare = z.union([
  z.object({ key: bytes, rangeEnd: bytes.optional(), target: z.literal("value"), result: compareResult, value: bytes }),
  z.object({ key: bytes, rangeEnd: bytes.optional(), target: z.enum(["version", "createRevision", "modRevision", "lease"]), result: compareResult, value: count }),
]);
// Nested txns are allowed (etcd v3.3+); depth is bounded by the KV layer's own limits, and by frame size here.
const requestOp: z.ZodType<RequestOp> = z.lazy(() => z.discriminatedUnion("op", [put, deleteRange, range, txn])) as z.ZodType<RequestOp>;
const txn = z.object({ op: z.literal("txn"), compare: z.array(compare), success: z.array(requestOp), failure: z.array(requestOp) });
const kvRequest = z.discriminatedUnion("op", [
  put,
  deleteRange,
  txn,
  z.object({ op: z.literal("leaseGrant"), id: positive, ttlSeconds: positive }),
  z.object({ op: z.literal("leaseRevoke"), id: positive }),
  z.object({ op: z.literal("leaseExpire"), ids: z.array(positive) }),
  z.object({ op: z.literal("compact"), revision: count }),
]);

/** zod schema of a `Command` (shape only; KV semantics such as limits are checked at apply). */
export const commandSchema = z.object({
  request: kvRequest,
  session: z.object({ clientId: z.string().min(1).max(256), sequence: positive }).optional(),
  maxAnswerBytes: positive.optional(),
});

/** Encodes a command for a Raft entry. Throws what cbor-x throws for unencodable values (a caller bug). */
export function encodeCommand(cmd: Command): Uint8Array {
  return encodeCbor(cmd);
}

/**
 * Decodes and validates an entry's data. Throws `CodecError("malformed")` on corrupt CBOR or a wrong shape,
 * with the path of the first bad field (e.g. `request.key: Input not instance of Uint8Array`).
 */
export function decodeCommand(bytesIn: Uint8Array): Command {
  const value = decodeCbor(bytesIn);
  const r = commandSchema.safeParse(value);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new CodecError("malformed", `invalid command at ${issue.path.join(".") || "(root)"}: ${issue.message}`);
  }
  return r.data as Command;
}
