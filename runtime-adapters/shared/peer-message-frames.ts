/**
 * The receiving end of a peer's message stream, shared by both server flavours (peer-http2-server.ts on
 * `node:http2`, peer-fetch-server.ts on Bun.serve / Deno.serve): frames out of received chunks, liveness,
 * keepalives, and delivery of each batch (docs/peer-protocol.md "Frames").
 */
import type { FrameDecoder } from "../../src/codec/frame.ts";
import { decodeFramePayload } from "../../src/codec/frame.ts";
import type { Message, NodeId } from "../../src/raft/types.ts";
import type { PeerServerContext } from "./peer-http2-server.ts";

/**
 * Feeds one received chunk of `from`'s message stream to its `decoder` and handles every complete frame:
 * marks `from` heard, skips empty batches (keepalives), passes the others to `ctx.messages`. A malformed
 * frame is logged and skipped, and a throwing handler is logged: neither ends the stream. Throws the
 * decoder's `CodecError` when a length prefix is above `maxFrameBytes` (the caller then ends the stream).
 */
export function deliverMessageChunk(ctx: PeerServerContext, from: NodeId, decoder: FrameDecoder, chunk: Uint8Array): void {
  for (const payload of decoder.push(chunk)) {
    ctx.heard(from);
    let batch: Message[];
    try {
      batch = decodeFramePayload(payload);
    } catch (e) {
      ctx.log("warn", `dropping malformed frame from ${from}: ${(e as Error).message}`);
      continue;
    }
    if (batch.length === 0) continue; // keepalive
    try {
      ctx.messages(from, batch);
    } catch (e) {
      ctx.log("error", `message handler failed for a batch from ${from}: ${(e as Error).message}`);
    }
  }
}
