/**
 * Reading a client request body under a byte limit while it streams in, for a follower that forwards a
 * write to the leader (src/server/node.ts). A declared Content-Length is checked before reading, but a
 * chunked body declares nothing, so the count must be kept as the bytes arrive: the reader stops and
 * cancels the body as soon as limit + 1 bytes were seen, so at most the limit is ever buffered
 * (docs/api.md "never buffered whole").
 */

/** Result of `readBodyWithin`: the whole body, or the fact that it went past the limit. */
export type LimitedBody = { ok: true; bytes: Uint8Array<ArrayBuffer> } | { ok: false; seenBytes: number };

/**
 * Reads `body` to the end if it holds at most `limitBytes` bytes and returns them in one array; otherwise
 * stops at the first chunk that takes the count past the limit, cancels the stream (the sender's upload is
 * not read further) and returns `{ ok: false, seenBytes }` (bytes counted so far, at most limit + one
 * chunk). Memory held: at most `limitBytes` plus the chunk in hand. A null body reads as 0 bytes.
 * Throws whatever the body stream throws (a client that disconnected mid-upload).
 */
export async function readBodyWithin(body: ReadableStream<Uint8Array> | null, limitBytes: number): Promise<LimitedBody> {
  if (!body) return { ok: true, bytes: new Uint8Array(0) };
  const reader = body.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limitBytes) {
      // Cancel, not read on: a 200 MB upload must not be pulled through just to be refused.
      await reader.cancel().catch(() => {});
      return { ok: false, seenBytes: size };
    }
    parts.push(value);
  }
  const out = new Uint8Array(size);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.byteLength;
  }
  return { ok: true, bytes: out };
}
