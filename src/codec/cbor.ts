/**
 * The one cbor-x configuration edgekv uses for everything it puts on the wire or in the log (peer frames,
 * KV commands). Settings are chosen so that a value decodes to exactly what was encoded, on Node, Bun and
 * Deno alike (docs/peer-protocol.md "Encoding"):
 * - `useRecords: false`, `structuredClone: false`, `pack: false`, `bundleStrings: false`: plain CBOR maps
 *   and arrays only — no cbor-x record extension, no shared-structure state between encoder and decoder
 *   (each frame must decode on its own, by a peer possibly running another runtime or version).
 * - `tagUint8Array: false`: a `Uint8Array` is a plain CBOR byte string (major type 2), not tag 64, so it
 *   decodes back as a `Uint8Array` (on Node a `Buffer`, which is a `Uint8Array` subclass).
 * - `mapsAsObjects: true`: CBOR maps with string keys decode as plain objects.
 * - `copyBuffers: false` (the default): byte strings decode as views into the source bytes (zero copy).
 */
import { Decoder, Encoder } from "cbor-x";

const OPTIONS = {
  useRecords: false,
  structuredClone: false,
  pack: false,
  bundleStrings: false,
  tagUint8Array: false,
  mapsAsObjects: true,
  copyBuffers: false,
  // Keep `undefined` distinguishable from absence is not needed; absent keys stay absent.
} as const;

/** Shared cbor-x encoder with edgekv's settings. `encode(value)` returns fresh bytes (never reused by a later call). */
export const cborEncoder = new Encoder(OPTIONS);

/** Shared cbor-x decoder with edgekv's settings; byte strings come back as views into the input. */
export const cborDecoder = new Decoder(OPTIONS);

/** Error for bytes that are not what the reader expected (corrupt, truncated, wrong shape, too large). `code` is stable. */
export class CodecError extends Error {
  constructor(
    readonly code: "frame_too_large" | "malformed" | "buffer_overflow",
    message: string,
  ) {
    super(message);
    this.name = "CodecError";
  }
}

/** Encodes `value` to CBOR bytes with edgekv's settings. Throws what cbor-x throws for unencodable values. */
export function encodeCbor(value: unknown): Uint8Array {
  return cborEncoder.encode(value);
}

/** Decodes one CBOR value; throws `CodecError("malformed")` on corrupt or truncated input (never another type). */
export function decodeCbor(bytes: Uint8Array): unknown {
  try {
    return cborDecoder.decode(bytes);
  } catch (e) {
    throw new CodecError("malformed", `corrupt CBOR: ${(e as Error).message}`);
  }
}
