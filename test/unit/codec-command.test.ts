import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { decodeCommand, encodeCommand } from "../../src/codec/command.ts";
import { CodecError, encodeCbor } from "../../src/codec/cbor.ts";
import type { Command, Compare, KvRequest, RequestOp } from "../../src/kv/types.ts";
import { plainBytes } from "./codec-arbitraries.ts";

const bytes = fc.uint8Array({ maxLength: 32 });
const n = fc.nat({ max: 2 ** 50 });
const pos = fc.integer({ min: 1, max: 2 ** 50 });
const put = fc.record({ op: fc.constant("put" as const), key: bytes, value: bytes, lease: n, prevKv: fc.boolean() }, { requiredKeys: ["op", "key", "value"] });
const del = fc.record({ op: fc.constant("deleteRange" as const), key: bytes, rangeEnd: bytes, prevKv: fc.boolean() }, { requiredKeys: ["op", "key"] });
const rng = fc.record({ op: fc.constant("range" as const), key: bytes, rangeEnd: bytes, limit: n, revision: n, countOnly: fc.boolean(), keysOnly: fc.boolean() }, { requiredKeys: ["op", "key"] });
const cmp: fc.Arbitrary<Compare> = fc.oneof(
  fc.record({ key: bytes, target: fc.constant("value" as const), result: fc.constantFrom("=" as const, "!=" as const, "<" as const, ">" as const), value: bytes }),
  fc.record({ key: bytes, rangeEnd: bytes, target: fc.constantFrom("version" as const, "lease" as const, "modRevision" as const), result: fc.constantFrom("=" as const, ">" as const), value: n }),
);
const { op } = fc.letrec<{ op: RequestOp }>((tie) => ({
  op: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    put,
    del,
    rng,
    fc.record({ op: fc.constant("txn" as const), compare: fc.array(cmp, { maxLength: 2 }), success: fc.array(tie("op"), { maxLength: 2 }), failure: fc.array(tie("op"), { maxLength: 2 }) }),
  ),
}));
const request: fc.Arbitrary<KvRequest> = fc.oneof(
  put,
  del,
  op.filter((o): o is Extract<RequestOp, { op: "txn" }> => o.op === "txn"),
  fc.record({ op: fc.constant("leaseGrant" as const), id: pos, ttlSeconds: pos }),
  fc.record({ op: fc.constant("leaseRevoke" as const), id: pos }),
  fc.record({ op: fc.constant("leaseExpire" as const), ids: fc.array(pos, { maxLength: 4 }) }),
  fc.record({ op: fc.constant("compact" as const), revision: n }),
);
const command: fc.Arbitrary<Command> = fc.record(
  { request, session: fc.record({ clientId: fc.string({ minLength: 1, maxLength: 20 }), sequence: pos }), maxAnswerBytes: pos },
  { requiredKeys: ["request"] },
);

describe("KV command codec", () => {
  it("round-trips random commands exactly (property)", () => {
    fc.assert(
      fc.property(command, (cmd) => {
        assert.deepEqual(plainBytes(decodeCommand(encodeCommand(cmd))), plainBytes(cmd));
      }),
      { numRuns: 300 },
    );
  });

  it("decodes key and value as views into the entry data", () => {
    const data = encodeCommand({ request: { op: "put", key: new Uint8Array([1, 2]), value: new Uint8Array([3, 4, 5]) } });
    const cmd = decodeCommand(data);
    assert.equal(cmd.request.op, "put");
    if (cmd.request.op === "put") {
      assert.equal(cmd.request.value.buffer, data.buffer);
      assert.deepEqual([...cmd.request.value], [3, 4, 5]);
    }
  });

  it("turns corrupt bytes into CodecError, never a crash of another kind", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (junk) => {
        try {
          decodeCommand(junk);
        } catch (e) {
          assert.ok(e instanceof CodecError, `unexpected ${String(e)}`);
        }
      }),
      { numRuns: 300 },
    );
  });

  it("names the bad field on a wrong shape", () => {
    const wrong = encodeCbor({ request: { op: "put", key: "not-bytes", value: new Uint8Array(1) } });
    assert.throws(() => decodeCommand(wrong), (e: unknown) => e instanceof CodecError && /request\.key/.test(e.message));
    assert.throws(() => decodeCommand(encodeCbor({ request: { op: "explode" } })), CodecError);
    assert.throws(() => decodeCommand(encodeCbor({ request: { op: "leaseGrant", id: 0, ttlSeconds: 5 } })), /request\.id/);
    // The answer cap a txn carries (Command.maxAnswerBytes) is a positive integer of bytes.
    const txn = { op: "txn", compare: [], success: [], failure: [] };
    assert.throws(() => decodeCommand(encodeCbor({ request: txn, maxAnswerBytes: 0 })), /maxAnswerBytes/);
    assert.throws(() => decodeCommand(encodeCbor({ request: txn, maxAnswerBytes: "64k" })), /maxAnswerBytes/);
    assert.equal(decodeCommand(encodeCbor({ request: txn, maxAnswerBytes: 65536 })).maxAnswerBytes, 65536);
  });
});
