/**
 * CRC-32C (Castagnoli, polynomial 0x82F63B78 reflected), the checksum of every stored Raft log entry and of
 * snapshot files. Pure TS, table driven (slicing-by-4), so it runs unchanged on every runtime and in the
 * pure layer. CRC-32C is what iSCSI, ext4 and etcd's WAL use; it detects all burst errors up to 32 bits.
 *
 * Chaining: `crc32c(b, crc32c(a))` equals `crc32c(a ++ b)` (zlib-style seed), so a file can be checked
 * chunk by chunk while it streams.
 */

const POLY = 0x82f63b78;

/** tables[k][b]: CRC of byte b followed by k zero bytes; slicing-by-4 processes 4 bytes per step. */
const TABLES: Uint32Array[] = (() => {
  const t0 = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? POLY ^ (c >>> 1) : c >>> 1;
    t0[n] = c >>> 0;
  }
  const out = [t0];
  for (let k = 1; k < 4; k++) {
    const prev = out[k - 1];
    const t = new Uint32Array(256);
    for (let n = 0; n < 256; n++) t[n] = (prev[n] >>> 8) ^ t0[prev[n] & 0xff];
    out.push(t);
  }
  return out;
})();

/**
 * CRC-32C of `bytes`, continuing from `seed` (the CRC of the bytes before; 0 to start). Returns an unsigned
 * 32-bit integer. Check value: crc32c of ASCII "123456789" is 0xE3069283 (RFC 3720 appendix B.4).
 */
export function crc32c(bytes: Uint8Array, seed = 0): number {
  const [t0, t1, t2, t3] = TABLES;
  let c = ~seed >>> 0;
  let i = 0;
  const n = bytes.length;
  const end4 = n - (n % 4);
  for (; i < end4; i += 4) {
    c ^= bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24);
    c = t3[c & 0xff] ^ t2[(c >>> 8) & 0xff] ^ t1[(c >>> 16) & 0xff] ^ t0[c >>> 24];
  }
  for (; i < n; i++) c = t0[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

/**
 * CRC-32C over a string's UTF-16 code units (two bytes each, little-endian), continuing from `seed`. Used
 * for text columns (a conf change's JSON) in the pure layer, which has no TextEncoder; stable because
 * JavaScript strings are UTF-16.
 */
export function crc32cUtf16(text: string, seed = 0): number {
  const t0 = TABLES[0];
  let c = ~seed >>> 0;
  for (let i = 0; i < text.length; i++) {
    const u = text.charCodeAt(i);
    c = t0[(c ^ u) & 0xff] ^ (c >>> 8);
    c = t0[(c ^ (u >>> 8)) & 0xff] ^ (c >>> 8);
  }
  return ~c >>> 0;
}

const header = new Uint8Array(17);
const headerView = new DataView(header.buffer);

/**
 * The checksum stored with a Raft log entry (src/kv/raft-log.ts): CRC-32C over index (8 bytes LE), term
 * (8 bytes LE), type (1 byte: 0 normal, 1 confChange), the data bytes, then the conf change JSON (UTF-16),
 * so a flipped bit in any stored column is caught. Indexes and terms must be integers below 2^53.
 */
export function entryChecksum(index: number, term: number, type: number, data: Uint8Array, confChangeJson: string | null): number {
  headerView.setUint32(0, index % 0x1_0000_0000, true);
  headerView.setUint32(4, Math.floor(index / 0x1_0000_0000), true);
  headerView.setUint32(8, term % 0x1_0000_0000, true);
  headerView.setUint32(12, Math.floor(term / 0x1_0000_0000), true);
  header[16] = type;
  let c = crc32c(header);
  c = crc32c(data, c);
  return confChangeJson === null ? c : crc32cUtf16(confChangeJson, c);
}
