/**
 * Body format of `POST /peer/v1/snapshot` (docs/peer-protocol.md "Snapshots"): the snapshot bytes as
 * length-prefixed pieces (4-byte big-endian length, then the bytes), closed by an empty piece. The end
 * marker makes completeness part of the protocol: on some runtimes a reset upload looked like a normal end
 * of stream to the receiver (Bun 1.4.4 `node:http2`), which would have let a truncated snapshot through.
 */
import { FrameDecoder } from "../../src/codec/frame.ts";

/** The empty piece that ends a complete snapshot body. */
export const SNAPSHOT_END = new Uint8Array(4);

/** Splits a chunk into [length prefix, bytes] pairs of at most `maxPieceBytes` each (views, no copy). Empty chunks give nothing. */
export function snapshotPieces(chunk: Uint8Array, maxPieceBytes: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let off = 0; off < chunk.length; off += maxPieceBytes) {
    const piece = chunk.subarray(off, Math.min(chunk.length, off + maxPieceBytes));
    const header = new Uint8Array(4);
    new DataView(header.buffer).setUint32(0, piece.length, false);
    out.push(header, piece);
  }
  return out;
}

/**
 * Reads a snapshot body, yielding the snapshot's bytes. Throws when the body ends without the end marker
 * (a broken upload), has bytes after it, or announces a piece above `maxPieceBytes`.
 */
export async function* readSnapshotBody(body: AsyncIterable<Uint8Array>, maxPieceBytes: number): AsyncIterable<Uint8Array> {
  const decoder = new FrameDecoder(maxPieceBytes);
  let complete = false;
  for await (const chunk of body) {
    for (const piece of decoder.push(chunk)) {
      if (complete) throw new Error("snapshot stream has bytes after its end marker");
      if (piece.length === 0) complete = true;
      else yield piece;
    }
  }
  if (!complete || decoder.bufferedBytes > 0) throw new Error("snapshot stream broken before its end marker");
}
