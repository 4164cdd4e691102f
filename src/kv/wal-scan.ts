/**
 * A check of a SQLite `-wal` file before SQLite opens it: does the file hold a committed transaction that
 * SQLite's recovery would silently drop?
 *
 * Why: SQLite's recovery replays WAL frames from the start while each one's salts match the header and its
 * cumulative checksum is right, and stops at the first one that is not. Frames after a damaged one are
 * ignored without a word, committed or not. A node whose WAL was damaged on disk (a flipped or overwritten
 * block after the writes were fsynced) would then restart with a shorter Raft log and an older term and
 * vote than it acknowledged, which breaks Raft's safety (docs/nemesis.md, break session 2026-11-30
 * evening). etcd refuses to start on a checksum mismatch inside its WAL for the same reason.
 *
 * The rule (`damaged`): a commit frame (one that ends a transaction) of the WAL's current generation (the
 * header's salts) lies after the first frame recovery rejects. SQLite writes a generation's frames in order,
 * so such a frame was written after the rejected one: a transaction that was committed, and if it was
 * acknowledged, fsynced. A header whose checksum fails makes recovery drop every frame, so then any commit
 * frame with the header's stored salts counts. What the rule cannot see: a WAL cut short (nothing is left to find), and damage in
 * the last transaction. What it may wrongly report: after a power loss tore a frame that was never
 * fsynced, frames written after it and the frames of a later run that reused that part of the file; a
 * refusal then costs a rejoin of that member, which is the safe side (docs/storage.md).
 *
 * Format (sqlite.org/walformat.html): a 32-byte header (magic 0x377f0682 or 0x377f0683, whose low bit picks
 * big-endian checksum words; format version; page size; checkpoint sequence; salt-1, salt-2; checksum of
 * the first 24 bytes), then frames of a 24-byte header (page number; database size in pages for a commit
 * frame, else 0; salt-1, salt-2; cumulative checksum) and one page. Pure: no I/O; feed it the file's bytes
 * in chunks of any size.
 */

/** What `WalScanner.result` reports. Counts are frames (a frame is 24 bytes + one page). */
export interface WalScan {
  /** False when the file is shorter than a header, or the header is not a valid WAL header (recovery then ignores every frame). */
  headerValid: boolean;
  /** Page size in bytes from the header (0 when magic, version or page size is unreadable: nothing is framed). */
  pageSize: number;
  /** Whole frames in the file. */
  frames: number;
  /** Frames SQLite's recovery accepts (up to and including the last valid commit frame). */
  recoveredFrames: number;
  /** Index (0-based) of the first frame recovery rejects (0 when it rejects the header), or -1 when it rejects none. */
  firstRejected: number;
  /** Commit frames of the header's generation after the first rejected frame. */
  commitsAfterRejected: number;
  /** True when `commitsAfterRejected` > 0: recovery would drop committed transactions. */
  damaged: boolean;
}

const WAL_HEADER_BYTES = 32;
const FRAME_HEADER_BYTES = 24;
const MAGIC_LE = 0x377f0682;
const MAGIC_BE = 0x377f0683;
const WAL_FORMAT_VERSION = 3007000;

function u32be(b: Uint8Array, at: number): number {
  return ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
}

function u32le(b: Uint8Array, at: number): number {
  return (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;
}

/**
 * SQLite's WAL checksum over `bytes[from, to)` (a multiple of 8 bytes), continuing from `s` ([s1, s2]):
 * for each pair of 32-bit words x0, x1 (big- or little-endian per the header's magic),
 * s1 += x0 + s2; s2 += x1 + s1, modulo 2^32. Returns the new pair.
 */
export function walChecksum(bytes: Uint8Array, from: number, to: number, bigEndian: boolean, s: [number, number]): [number, number] {
  let s1 = s[0];
  let s2 = s[1];
  const word = bigEndian ? u32be : u32le;
  for (let i = from; i < to; i += 8) {
    s1 = (s1 + word(bytes, i) + s2) >>> 0;
    s2 = (s2 + word(bytes, i + 4) + s1) >>> 0;
  }
  return [s1, s2];
}

/** Incremental scanner of a `-wal` file's bytes; see the file comment. */
export class WalScanner {
  private pending: Uint8Array = new Uint8Array(0);
  private header: Uint8Array | undefined;
  private headerValid = false;
  private bigEndian = false;
  private pageSize = 0;
  private salt1 = 0;
  private salt2 = 0;
  private chain: [number, number] = [0, 0];
  private frames = 0;
  private recovered = 0;
  private firstRejected = -1;
  private commitsAfter = 0;
  private done = false;

  /** Feeds the next bytes of the file (any size; the scanner keeps a partial frame until it is whole). */
  push(chunk: Uint8Array): void {
    if (this.done) return;
    let buf = chunk;
    if (this.pending.length > 0) {
      buf = new Uint8Array(this.pending.length + chunk.length);
      buf.set(this.pending, 0);
      buf.set(chunk, this.pending.length);
    }
    let at = 0;
    if (this.header === undefined) {
      if (buf.length < WAL_HEADER_BYTES) {
        this.pending = buf.slice();
        return;
      }
      this.readHeader(buf.subarray(0, WAL_HEADER_BYTES));
      at = WAL_HEADER_BYTES;
      if (this.pageSize === 0) {
        this.done = true;
        return;
      }
    }
    const frameBytes = FRAME_HEADER_BYTES + this.pageSize;
    while (buf.length - at >= frameBytes) {
      this.readFrame(buf, at, at + frameBytes);
      at += frameBytes;
    }
    this.pending = buf.slice(at);
  }

  /** The verdict over the bytes fed so far (a trailing partial frame is ignored, as SQLite ignores it). */
  result(): WalScan {
    return {
      headerValid: this.headerValid,
      pageSize: this.pageSize,
      frames: this.frames,
      recoveredFrames: this.recovered,
      firstRejected: this.firstRejected,
      commitsAfterRejected: this.commitsAfter,
      damaged: this.commitsAfter > 0,
    };
  }

  private readHeader(h: Uint8Array): void {
    this.header = h.slice();
    const magic = u32be(h, 0);
    if (magic !== MAGIC_LE && magic !== MAGIC_BE) return;
    if (u32be(h, 4) !== WAL_FORMAT_VERSION) return;
    const pageSize = u32be(h, 8);
    const size = pageSize === 1 ? 65536 : pageSize;
    if (size < 512 || size > 65536 || (size & (size - 1)) !== 0) return;
    this.bigEndian = magic === MAGIC_BE;
    this.pageSize = size;
    this.salt1 = u32be(h, 16);
    this.salt2 = u32be(h, 20);
    const sum = walChecksum(h, 0, 24, this.bigEndian, [0, 0]);
    if (sum[0] !== u32be(h, 24) || sum[1] !== u32be(h, 28)) {
      // Recovery drops the whole file; its frames can still be framed and matched by the stored salts.
      this.firstRejected = 0;
      return;
    }
    this.headerValid = true;
    this.chain = sum;
  }

  private readFrame(buf: Uint8Array, from: number, to: number): void {
    const index = this.frames++;
    const ours = u32be(buf, from + 8) === this.salt1 && u32be(buf, from + 12) === this.salt2;
    const commit = u32be(buf, from + 4) !== 0;
    if (this.firstRejected >= 0) {
      if (ours && commit) this.commitsAfter++;
      return;
    }
    let ok = ours && u32be(buf, from) !== 0;
    if (ok) {
      const head = walChecksum(buf, from, from + 8, this.bigEndian, this.chain);
      const sum = walChecksum(buf, from + FRAME_HEADER_BYTES, to, this.bigEndian, head);
      ok = sum[0] === u32be(buf, from + 16) && sum[1] === u32be(buf, from + 20);
      if (ok) this.chain = sum;
    }
    if (!ok) {
      this.firstRejected = index;
      return;
    }
    if (commit) this.recovered = index + 1;
  }
}
