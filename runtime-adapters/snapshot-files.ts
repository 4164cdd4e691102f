/**
 * The file operations snapshots need (the `SnapshotFiles` port of src/kv/snapshot.ts), over `node:fs`,
 * which Node, Bun and Deno all provide with the same synchronous API, so one implementation serves the three
 * runtimes. Also the chunked reader and writer a transport uses to stream a snapshot file to a follower.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, statSync, writeSync } from "node:fs";
import type { SnapshotFiles } from "../src/kv/snapshot.ts";
import { crc32c } from "../src/kv/checksum.ts";

/** Default chunk for streaming and checksumming a snapshot file: 1 MiB. */
export const SNAPSHOT_CHUNK_BYTES = 1 << 20;

/** fsyncs the file or directory at `path` (a directory fsync makes a rename or create in it durable). */
function fsyncPath(path: string): void {
  const fd = openSync(path, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Yields the file at `path` in chunks of at most `chunkBytes` bytes (a fresh Uint8Array per chunk, safe
 * to keep). Throws the fs error if the file cannot be read.
 */
export function* readFileChunks(path: string, chunkBytes = SNAPSHOT_CHUNK_BYTES): Generator<Uint8Array> {
  const fd = openSync(path, "r");
  try {
    for (;;) {
      const buf = new Uint8Array(chunkBytes);
      const n = readSync(fd, buf, 0, chunkBytes, null);
      if (n === 0) return;
      yield n === chunkBytes ? buf : buf.subarray(0, n);
    }
  } finally {
    closeSync(fd);
  }
}

/** The node:fs implementation of the SnapshotFiles port. Paths are POSIX paths. */
export const nodeFsSnapshotFiles: SnapshotFiles = {
  ensureDir: (dir) => void mkdirSync(dir, { recursive: true }),
  list: (dir) => (existsSync(dir) ? readdirSync(dir).sort() : []),
  exists: (path) => existsSync(path),
  fsync: fsyncPath,
  rename: (from, to) => renameSync(from, to),
  remove: (path) => rmSync(path, { force: true }),
  size: (path) => statSync(path).size,
  forEachChunk(path, chunkBytes, fn) {
    for (const chunk of readFileChunks(path, chunkBytes)) fn(chunk);
  },
  writeTextDurably(path, text) {
    const tmp = `${path}.tmp`;
    const fd = openSync(tmp, "w");
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  },
  readText: (path) => (existsSync(path) ? readFileSync(path, "utf8") : undefined),
};

/**
 * Receives a snapshot file streamed in chunks (the follower side of InstallSnapshot): writes to
 * `<finalPath>.part`, and on `finish(expectedCrc32c)` fsyncs, checks size and CRC-32C and renames into
 * place. Throws on a checksum mismatch (the partial file is removed) or any fs error. `abort()` removes the
 * partial file.
 */
export class SnapshotFileWriter {
  private readonly fd: number;
  private readonly partPath: string;
  private crc = 0;
  private bytes = 0;
  private closed = false;

  constructor(readonly finalPath: string) {
    this.partPath = `${finalPath}.part`;
    this.fd = openSync(this.partPath, "w");
  }

  /** Appends one chunk (any size). */
  write(chunk: Uint8Array): void {
    let off = 0;
    while (off < chunk.length) off += writeSync(this.fd, chunk, off, chunk.length - off);
    this.crc = crc32c(chunk, this.crc);
    this.bytes += chunk.length;
  }

  /** Completes the file; returns its size in bytes. Throws if the CRC-32C or the size differs from what the sender announced. */
  finish(expectedCrc32c: number, expectedSizeBytes?: number): number {
    fsyncSync(this.fd);
    closeSync(this.fd);
    this.closed = true;
    if (this.crc !== expectedCrc32c || (expectedSizeBytes !== undefined && this.bytes !== expectedSizeBytes)) {
      rmSync(this.partPath, { force: true });
      throw new Error(`snapshot file ${this.finalPath} is corrupt: crc32c ${this.crc} size ${this.bytes}, expected ${expectedCrc32c} size ${expectedSizeBytes ?? "any"}`);
    }
    renameSync(this.partPath, this.finalPath);
    const dir = this.finalPath.slice(0, Math.max(1, this.finalPath.lastIndexOf("/")));
    fsyncPath(dir);
    return this.bytes;
  }

  /** Discards the partial file. */
  abort(): void {
    if (!this.closed) {
      closeSync(this.fd);
      this.closed = true;
    }
    rmSync(this.partPath, { force: true });
  }
}
