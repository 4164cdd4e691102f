/**
 * encodeFrame encodes a leader's new entries once for all followers (issue #6, write path): the AppendEntries
 * of one Ready carry the same Entry objects to every follower, and the second frame reuses the first one's
 * CBOR of `entries`. The frames still decode to exactly the messages given.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { FRAME_HEADER_BYTES, decodeFramePayload, encodeFrame, frameEncodeCounts } from "../../src/codec/frame.ts";
import type { Entry, Message } from "../../src/raft/types.ts";
import { plainBytes } from "./codec-arbitraries.ts";

function entries(from: number, n: number, size = 100): Entry[] {
  return Array.from({ length: n }, (_, i) => ({ index: from + i, term: 4, type: "normal" as const, data: new Uint8Array(size).fill((from + i) & 0xff) }));
}

function append(to: string, prevLogIndex: number, es: Entry[], commit = 10): Message {
  return { type: "appendEntries", from: "n1", to, term: 4, prevLogIndex, prevLogTerm: 4, commit, entries: es };
}

function roundTrip(msgs: Message[]): Message[] {
  const frame = encodeFrame(msgs);
  const len = new DataView(frame.buffer, frame.byteOffset, FRAME_HEADER_BYTES).getUint32(0, false);
  assert.equal(len, frame.length - FRAME_HEADER_BYTES);
  return decodeFramePayload(frame.subarray(FRAME_HEADER_BYTES));
}

describe("encodeFrame and a leader's shared entries", () => {
  it("encodes the same entries once for two followers and both frames decode to their own messages", () => {
    const es = entries(11, 64);
    const toN2 = append("n2", 10, es, 9);
    const toN3 = append("n3", 10, es, 10);
    const before = frameEncodeCounts();
    const got2 = roundTrip([toN2]);
    const got3 = roundTrip([toN3]);
    const after = frameEncodeCounts();
    assert.deepEqual(plainBytes(got2), plainBytes([toN2]));
    assert.deepEqual(plainBytes(got3), plainBytes([toN3]));
    assert.equal(after.entriesEncoded - before.entriesEncoded, 1);
    assert.equal(after.entriesReused - before.entriesReused, 1);
  });

  it("reuses every array when each follower gets several AppendEntries (one per proposal) in one Ready", () => {
    const e1 = entries(31, 2);
    const e2 = entries(33, 3);
    const e3 = entries(36, 1);
    const batch = (to: string) => [append(to, 30, e1), append(to, 32, e2), append(to, 35, e3)];
    const before = frameEncodeCounts();
    const got2 = roundTrip(batch("n2"));
    const got3 = roundTrip(batch("n3"));
    assert.deepEqual(plainBytes(got2), plainBytes(batch("n2")));
    assert.deepEqual(plainBytes(got3), plainBytes(batch("n3")));
    assert.equal(frameEncodeCounts().entriesEncoded - before.entriesEncoded, 3);
    assert.equal(frameEncodeCounts().entriesReused - before.entriesReused, 3);
  });

  it("does not reuse the encoding for other entries that share only the first object", () => {
    const es = entries(21, 5);
    const other = [...es.slice(0, 4), { ...es[4], data: new Uint8Array([1, 2, 3]) }];
    const before = frameEncodeCounts();
    roundTrip([append("n2", 20, es)]);
    const got = roundTrip([append("n3", 20, other)]);
    assert.deepEqual(plainBytes(got), plainBytes([append("n3", 20, other)]));
    assert.equal(frameEncodeCounts().entriesEncoded - before.entriesEncoded, 2);
    assert.equal(frameEncodeCounts().entriesReused - before.entriesReused, 0);
  });

  it("keeps mixed batches of any length intact (array heads of 1, 24, 300 messages)", () => {
    for (const n of [1, 24, 300]) {
      const es = entries(1, 3, 7);
      const msgs: Message[] = Array.from({ length: n }, (_, i) =>
        i % 3 === 0 ? append("n2", 0, es, i) : i % 3 === 1 ? { type: "heartbeat", from: "n1", to: "n2", term: 4, commit: i, readSeq: i } : append("n2", 5, [], i),
      );
      assert.deepEqual(plainBytes(roundTrip(msgs)), plainBytes(msgs), `batch of ${n}`);
    }
  });
});
