import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { CodecError, DEFAULT_MAX_FRAME_BYTES, FrameDecoder, PEER_PROTOCOL_VERSION, decodeFramePayload, encodeFrame } from "../../src/codec/frame.ts";
import type { Message } from "../../src/raft/types.ts";
import { arbMessage, plainBytes } from "./codec-arbitraries.ts";

const append = (data: Uint8Array[]): Message => ({
  type: "appendEntries",
  from: "n1",
  to: "n2",
  term: 3,
  prevLogIndex: 7,
  prevLogTerm: 2,
  commit: 6,
  entries: data.map((d, i) => ({ index: 8 + i, term: 3, type: "normal", data: d })),
});

/** Compares decoded messages to the originals with byte fields normalised to plain Uint8Array (Node gives Buffer). */
function assertSameMessages(actual: Message[], expected: Message[]): void {
  assert.deepEqual(plainBytes(actual), plainBytes(expected));
}

describe("peer frame codec", () => {
  it("uses protocol version 1 and a 16 MiB default frame limit", () => {
    assert.equal(PEER_PROTOCOL_VERSION, 1);
    assert.equal(DEFAULT_MAX_FRAME_BYTES, 16 * 1024 * 1024);
  });

  it("prefixes each frame with its payload length, big-endian", () => {
    const frame = encodeFrame([{ type: "timeoutNow", from: "a", to: "b", term: 1 }]);
    const len = new DataView(frame.buffer, frame.byteOffset, 4).getUint32(0, false);
    assert.equal(len, frame.length - 4);
  });

  it("round-trips a batch with entry data as Uint8Array", () => {
    const msgs = [append([new Uint8Array([1, 2, 3]), new Uint8Array(0)])];
    const [payloads] = [new FrameDecoder().push(encodeFrame(msgs))];
    assert.equal(payloads.length, 1);
    const out = decodeFramePayload(payloads[0]);
    assert.ok((out[0] as { entries: { data: unknown }[] }).entries[0].data instanceof Uint8Array);
    assertSameMessages(out, msgs);
  });

  it("decodes entry data as a view sharing the received frame's buffer (zero copy)", () => {
    const frame = encodeFrame([append([new Uint8Array([9, 9, 9, 9, 9, 9, 9, 9])])]);
    const [payload] = new FrameDecoder().push(frame);
    assert.equal(payload.buffer, frame.buffer, "payload is a view into the frame");
    const msg = decodeFramePayload(payload)[0] as { entries: { data: Uint8Array }[] };
    const data = msg.entries[0].data;
    assert.equal(data.buffer, frame.buffer, "entry data shares the frame's ArrayBuffer");
    frame[frame.length - 1] = 42; // writing the frame is visible through the view
    assert.equal(data[data.length - 1], 42);
  });

  it("reassembles a frame split into 1-byte chunks and splits several frames in one chunk", () => {
    const a = encodeFrame([append([new Uint8Array([1])])]);
    const b = encodeFrame([{ type: "heartbeat", from: "n1", to: "n2", term: 3, commit: 5, readSeq: 0 }]);
    const d = new FrameDecoder();
    const got: Message[][] = [];
    for (const byte of a) got.push(...d.pushMessages(new Uint8Array([byte])));
    assert.equal(got.length, 1);
    const both = new Uint8Array(a.length + b.length);
    both.set(a);
    both.set(b, a.length);
    got.push(...d.pushMessages(both));
    assert.equal(got.length, 3);
    assert.equal(got[2][0].type, "heartbeat");
    assert.equal(d.bufferedBytes, 0);
  });

  it("refuses an oversized frame on both ends with a clear error", () => {
    const big = append([new Uint8Array(2048)]);
    assert.throws(() => encodeFrame([big], 1024), (e: unknown) => e instanceof CodecError && e.code === "frame_too_large" && /exceeds the limit of 1024 bytes/.test(e.message));
    const d = new FrameDecoder(1024);
    const header = new Uint8Array([0, 0, 0x10, 0]); // 4096 bytes announced
    assert.throws(() => d.push(header), (e: unknown) => e instanceof CodecError && e.code === "frame_too_large");
    assert.throws(() => d.push(new Uint8Array(1)), CodecError, "a failed decoder stays failed");
    assert.equal(d.bufferedBytes, 0, "nothing kept after failure");
  });

  it("reports corrupt payloads as CodecError, never another error", () => {
    for (const bytes of [new Uint8Array([0xff, 0x00]), new Uint8Array([0xa1]), new Uint8Array([0x01])]) {
      assert.throws(() => decodeFramePayload(bytes), CodecError);
    }
    const wrongShape = encodeFrame([{ type: "nope", from: "a", to: "b", term: 1 } as unknown as Message]);
    assert.throws(() => decodeFramePayload(wrongShape.subarray(4)), /unknown type "nope"/);
  });

  it("round-trips random message batches through random chunkings (property)", () => {
    fc.assert(
      fc.property(fc.array(arbMessage, { maxLength: 5 }), fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 8 }), (msgs, cuts) => {
        const frame = encodeFrame(msgs);
        const d = new FrameDecoder();
        const got: Message[][] = [];
        let off = 0;
        let i = 0;
        while (off < frame.length) {
          const n = cuts[i++ % cuts.length];
          got.push(...d.pushMessages(frame.subarray(off, off + n)));
          off += n;
        }
        assert.equal(got.length, 1);
        assertSameMessages(got[0], msgs);
      }),
      { numRuns: 200 },
    );
  });
});
