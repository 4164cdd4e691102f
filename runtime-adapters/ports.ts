/**
 * The runtime primitives an `EdgeNode` (src/server/node.ts `NodePorts`) needs, for the running runtime:
 * the SQLite driver (runtime-adapters/sqlite.ts), the HTTP/2 peer transport of this runtime's folder, the
 * node:fs snapshot files (with the chunked reader and durable writer of snapshot transfer), the off-loop
 * snapshot, WAL checkpoint and WAL fsync helpers, and a stderr logger.
 */
import type { NodePorts } from "../src/server/node.ts";
import { currentRuntime } from "./runtime.ts";
import { SnapshotFileWriter, nodeFsSnapshotFiles, readFileChunks } from "./snapshot-files.ts";
import { loadSqliteDriver } from "./sqlite.ts";
import { createSnapshotOffLoop } from "./snapshot-off-loop.ts";
import { startWalCheckpointer } from "./wal-checkpointer.ts";
import { freeBytesOf } from "./disk-space.ts";
import { createWalSync } from "./wal-sync.ts";

/** Log levels, least to most severe. */
export type LogLevel = "debug" | "info" | "warn" | "error";
const LEVEL_RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** Options of `createNodePorts`. */
export interface NodePortsOptions {
  /** Least severe level written (default "info"). */
  logLevel?: LogLevel;
  /** Prefix of every log line, e.g. the node id. */
  name?: string;
  /** Where log lines go (default stderr via console.error). */
  write?: (line: string) => void;
}

/**
 * Builds the ports for the running runtime. Log lines are `<ISO time> <level> [<name>] <message>`. Rejects
 * only if the runtime's SQLite module cannot be loaded.
 */
export async function createNodePorts(options: NodePortsOptions = {}): Promise<NodePorts> {
  const open = await loadSqliteDriver();
  const rt = currentRuntime();
  const transport =
    rt === "bun" ? await import("./bun/peer-transport.ts") : rt === "deno" ? await import("./deno/peer-transport.ts") : await import("./node/peer-transport.ts");
  const min = LEVEL_RANK[options.logLevel ?? "info"];
  const write = options.write ?? ((line: string) => console.error(line));
  const prefix = options.name ? ` [${options.name}]` : "";
  const log = (level: LogLevel, msg: string) => {
    if (LEVEL_RANK[level] >= min) write(`${new Date().toISOString()} ${level}${prefix} ${msg}`);
  };
  return {
    openSqlite: async (path) => open(path),
    // The node passes this same `log` in `opts`, so peer transport lines go through the same filtered sink.
    createPeerTransport: (opts) => transport.createPeerTransport(opts),
    snapshotFiles: nodeFsSnapshotFiles,
    freeBytes: (path) => freeBytesOf(path),
    readFileChunks: (path) => readFileChunks(path),
    createFileWriter: (path) => new SnapshotFileWriter(path),
    createSnapshotOffLoop: (dbPath, dir) => createSnapshotOffLoop(dbPath, dir),
    startWalCheckpointer: (dbPath, onFail) => startWalCheckpointer(dbPath, { onFail }),
    createWalSync: (dbPath) => createWalSync(dbPath),
    log,
  };
}
