/**
 * Member addresses replicate with membership: bootstrap records them, an applied addLearner step records
 * the URLs in its context, a remove forgets them, and a snapshot restore carries them (kv_members is in
 * KV_TABLES).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { KvStateMachine } from "../../src/kv/state-machine.ts";
import { KV_TABLES } from "../../src/kv/schema.ts";
import { decodeCommand } from "../../src/codec/command.ts";
import type { Entry } from "../../src/raft/types.ts";
import { openTestDb } from "../helpers/sql.ts";

const conf = (index: number, steps: Entry["confChange"]): Entry => ({ index, term: 1, type: "confChange", data: new Uint8Array(0), confChange: steps });

describe("kv member addresses", () => {
  it("records bootstrap addresses, addLearner context, and forgets removed members", async () => {
    const kv = new KvStateMachine(await openTestDb(), { decode: decodeCommand });
    kv.bootstrap({ voters: ["a", "b"], votersOutgoing: [], learners: [] }, { a: { peerUrl: "http://a:7000", clientUrl: "http://a:8080" }, b: { peerUrl: "http://b:7000", clientUrl: "" } });
    assert.deepEqual(Object.keys(kv.members()), ["a", "b"]);
    kv.applyEntries([conf(1, { steps: [{ type: "addLearner", nodeId: "c", context: JSON.stringify({ peerUrl: "http://c:7000", clientUrl: "http://c:8080" }) }] })]);
    assert.deepEqual(kv.members().c, { peerUrl: "http://c:7000", clientUrl: "http://c:8080" });
    assert.deepEqual(kv.confState().learners, ["c"]);
    kv.applyEntries([conf(2, { steps: [{ type: "addLearner", nodeId: "d", context: "not json" }] })]);
    assert.equal(kv.members().d, undefined, "an unreadable context is ignored, the membership change still applies");
    assert.deepEqual(kv.confState().learners, ["c", "d"]);
    kv.applyEntries([conf(3, { steps: [{ type: "update", nodeId: "a", context: JSON.stringify({ peerUrl: "http://a2:7000", clientUrl: "http://a2:8080" }) }] })]);
    assert.deepEqual(kv.members().a, { peerUrl: "http://a2:7000", clientUrl: "http://a2:8080" }, "an update step records new URLs");
    assert.deepEqual(kv.confState().voters, ["a", "b"]);
    kv.applyEntries([conf(4, { steps: [{ type: "remove", nodeId: "b" }] })]);
    assert.deepEqual(Object.keys(kv.members()), ["a", "c"]);
  });

  it("is a snapshot table", () => {
    assert.ok(KV_TABLES.includes("kv_members"));
  });
});
