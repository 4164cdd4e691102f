/**
 * Peer wire format (docs/peer-protocol.md): a stream of frames, each a 4-byte big-endian unsigned payload
 * length followed by that many bytes of CBOR — an array of Raft `Message`s (one batch). Entry `data` and
 * snapshot `data` decode as `Uint8Array` views into the received frame (DESIGN.md "Peers": no copies on the
 * hot path), so a receiver must not reuse a chunk's memory after handing it to `FrameDecoder.push`.
 */
import type { Entry, Message, MessageType } from "../raft/types.ts";
import { CodecError, decodeCbor, encodeCbor } from "./cbor.ts";

export { CodecError } from "./cbor.ts";

/** Version of the peer protocol (frames, headers, paths). Sent in `x-edgekv-protocol`; peers refuse other values. */
export const PEER_PROTOCOL_VERSION = 1;

/** Default largest frame payload accepted or produced: 16 MiB (DESIGN.md "Configuration defaults"). */
export const DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024;

/** Bytes of the length prefix in front of each frame. */
export const FRAME_HEADER_BYTES = 4;

const MESSAGE_TYPES: ReadonlySet<MessageType> = new Set<MessageType>([
  "appendEntries",
  "appendEntriesResponse",
  "requestVote",
  "requestVoteResponse",
  "heartbeat",
  "heartbeatResponse",
  "installSnapshot",
  "timeoutNow",
  "readIndex",
  "readIndexResponse",
]);

/**
 * Encodes one batch of messages as a whole frame (length prefix + CBOR). Throws `CodecError("frame_too_large")`
 * when the payload exceeds `maxFrameBytes` (bytes; default 16 MiB) — the caller should split the batch.
 */
export function encodeFrame(messages: Message[], maxFrameBytes = DEFAULT_MAX_FRAME_BYTES): Uint8Array {
  const parts = messages.some((m) => m.type === "appendEntries" && m.entries.length > 0) ? encodeParts(messages) : [encodeCbor(messages)];
  let length = 0;
  for (const p of parts) length += p.length;
  if (length > maxFrameBytes) {
    throw new CodecError("frame_too_large", `frame payload of ${length} bytes exceeds the limit of ${maxFrameBytes} bytes`);
  }
  const frame = new Uint8Array(FRAME_HEADER_BYTES + length);
  new DataView(frame.buffer, frame.byteOffset, FRAME_HEADER_BYTES).setUint32(0, length, false);
  let at = FRAME_HEADER_BYTES;
  for (const p of parts) {
    frame.set(p, at);
    at += p.length;
  }
  return frame;
}

/**
 * Encoded `entries` arrays, keyed by their first Entry object (issue #6, write path): a leader sends the
 * same new entries to every follower in one Ready, as the same Entry objects from its unstable log
 * (src/raft/log.ts), often as several AppendEntries per follower (one per proposal), so each array's CBOR is
 * made once and reused for the other followers. A WeakMap, so an encoding lives only as long as its first
 * entry does (the unstable log drops it after persist). Entries are never mutated once in the log; a log
 * suffix replaced after a conflict is new objects, so "same first and last object, same length" means the
 * same entries.
 */
const encodedEntries = new WeakMap<Entry, { last: Entry; count: number; bytes: Uint8Array }>();
/** Counts of `entries` arrays encoded and reused (read by tests through `frameEncodeCounts`). */
const counts = { entriesEncoded: 0, entriesReused: 0 };

/** How many AppendEntries `entries` arrays `encodeFrame` encoded and how many it reused from earlier calls. */
export function frameEncodeCounts(): { entriesEncoded: number; entriesReused: number } {
  return { ...counts };
}

function encodeEntries(entries: Entry[]): Uint8Array {
  const first = entries[0];
  const last = entries[entries.length - 1];
  const c = encodedEntries.get(first);
  if (c && c.count === entries.length && c.last === last) {
    counts.entriesReused++;
    return c.bytes;
  }
  const bytes = encodeCbor(entries);
  counts.entriesEncoded++;
  encodedEntries.set(first, { last, count: entries.length, bytes });
  return bytes;
}

/** CBOR head of an array of `n` items (RFC 8949 §3.1, major type 4). */
function arrayHead(n: number): Uint8Array {
  if (n < 24) return Uint8Array.of(0x80 | n);
  if (n < 0x100) return Uint8Array.of(0x98, n);
  if (n < 0x10000) return Uint8Array.of(0x99, n >> 8, n & 0xff);
  return Uint8Array.of(0x9a, (n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
}

/**
 * The payload as parts to concatenate: the array head, then each message. An AppendEntries with entries is
 * encoded with `entries: []` as its LAST key (an empty array is the single byte 0x80) and that byte is
 * replaced by the (possibly reused) encoding of the real entries: the same CBOR map, key order aside,
 * which the decoder does not care about.
 */
function encodeParts(messages: Message[]): Uint8Array[] {
  const parts: Uint8Array[] = [arrayHead(messages.length)];
  for (const m of messages) {
    if (m.type !== "appendEntries" || m.entries.length === 0) {
      parts.push(encodeCbor(m));
      continue;
    }
    const { entries, ...rest } = m;
    const head = encodeCbor({ ...rest, entries: [] });
    if (head[head.length - 1] !== 0x80) {
      parts.push(encodeCbor(m)); // not the expected shape: encode it whole
      continue;
    }
    parts.push(head.subarray(0, head.length - 1), encodeEntries(entries));
  }
  return parts;
}

/**
 * Decodes a frame payload (without its length prefix) into a batch of messages. Byte fields are views into
 * `payload`. Throws `CodecError("malformed")` when the bytes are not CBOR or not an array of well-formed
 * messages (checked: object, known `type`, string `from`/`to`, integer `term`, entries with byte `data`).
 */
export function decodeFramePayload(payload: Uint8Array): Message[] {
  const value = decodeCbor(payload);
  if (!Array.isArray(value)) throw new CodecError("malformed", "frame payload is not an array of messages");
  for (let i = 0; i < value.length; i++) checkMessage(value[i], i);
  return value as Message[];
}

function checkMessage(m: unknown, i: number): void {
  const bad = (why: string): never => {
    throw new CodecError("malformed", `message #${i}: ${why}`);
  };
  if (typeof m !== "object" || m === null) bad("not an object");
  const o = m as Record<string, unknown>;
  if (typeof o.type !== "string" || !MESSAGE_TYPES.has(o.type as MessageType)) bad(`unknown type ${JSON.stringify(o.type)}`);
  if (typeof o.from !== "string" || typeof o.to !== "string") bad("from/to must be strings");
  if (!Number.isSafeInteger(o.term)) bad("term must be an integer");
  if (o.type === "appendEntries") {
    if (!Array.isArray(o.entries)) bad("entries must be an array");
    for (const e of o.entries as unknown[]) {
      const en = e as Record<string, unknown>;
      if (typeof en !== "object" || en === null || !(en.data instanceof Uint8Array) || !Number.isSafeInteger(en.index)) {
        bad("entry must have an integer index and byte data");
      }
    }
  } else if (o.type === "installSnapshot") {
    const s = o.snapshot as Record<string, unknown> | undefined;
    if (typeof s !== "object" || s === null || !(s.data instanceof Uint8Array)) bad("snapshot must have byte data");
  }
}

/**
 * Streaming frame reader: push received chunks in order; get back each complete frame's payload. Handles a
 * frame split across chunks and several frames in one chunk. A frame that lies inside one chunk is returned
 * as a view of that chunk (zero copy); one spanning chunks is assembled once into a fresh buffer.
 *
 * Memory is bounded: at most one frame (`maxFrameBytes` + 4 bytes) is ever buffered. A length prefix above
 * `maxFrameBytes` throws `CodecError("frame_too_large")`; after any throw the decoder is unusable (the
 * stream is out of sync) and the connection must be dropped.
 */
export class FrameDecoder {
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  private failed: CodecError | undefined;

  /** @param maxFrameBytes largest accepted frame payload in bytes (default 16 MiB). */
  constructor(readonly maxFrameBytes = DEFAULT_MAX_FRAME_BYTES) {}

  /** Bytes held waiting for the rest of a frame. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  /** Adds a chunk; returns the payloads of the frames it completed, in order. Throws `CodecError` as described above. */
  push(chunk: Uint8Array): Uint8Array[] {
    if (this.failed) throw this.failed;
    const out: Uint8Array[] = [];
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    for (;;) {
      if (this.buffered < FRAME_HEADER_BYTES) return out;
      const length = this.peekLength();
      if (length > this.maxFrameBytes) {
        this.failed = new CodecError("frame_too_large", `incoming frame of ${length} bytes exceeds the limit of ${this.maxFrameBytes} bytes`);
        this.chunks = [];
        this.buffered = 0;
        throw this.failed;
      }
      if (this.buffered < FRAME_HEADER_BYTES + length) return out;
      this.take(FRAME_HEADER_BYTES);
      out.push(this.take(length));
    }
  }

  /** Pushes a chunk and decodes each completed frame into its message batch (see `decodeFramePayload`). */
  pushMessages(chunk: Uint8Array): Message[][] {
    return this.push(chunk).map(decodeFramePayload);
  }

  private peekLength(): number {
    const first = this.chunks[0];
    if (first.length >= FRAME_HEADER_BYTES) {
      return new DataView(first.buffer, first.byteOffset, FRAME_HEADER_BYTES).getUint32(0, false);
    }
    const head = this.copyOut(FRAME_HEADER_BYTES, false);
    return new DataView(head.buffer, head.byteOffset, FRAME_HEADER_BYTES).getUint32(0, false);
  }

  /** Removes and returns the next `n` bytes: a view when they sit in one chunk, else one assembled copy. */
  private take(n: number): Uint8Array {
    const first = this.chunks[0];
    if (n === 0) return new Uint8Array(0);
    if (first.length >= n) {
      const view = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      this.buffered -= n;
      return view;
    }
    return this.copyOut(n, true);
  }

  private copyOut(n: number, consume: boolean): Uint8Array {
    const out = new Uint8Array(n);
    let filled = 0;
    let i = 0;
    while (filled < n) {
      const c = this.chunks[i];
      const part = Math.min(c.length, n - filled);
      out.set(c.subarray(0, part), filled);
      filled += part;
      if (consume) {
        if (part === c.length) this.chunks.shift();
        else {
          this.chunks[0] = c.subarray(part);
          i++;
        }
      } else i++;
    }
    if (consume) this.buffered -= n;
    return out;
  }
}
