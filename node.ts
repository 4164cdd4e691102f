/**
 * edgekv node entry point: `bun run node.ts`, `deno run -A node.ts`, `npx tsx node.ts` (or
 * `node --import tsx node.ts`). Loads the configuration (src/config: defaults < YAML < EDGEKV_* env < flags),
 * opens the node (src/server/node.ts), serves the client API on clientHost:clientPort with the runtime's own
 * HTTP server, and stops gracefully on SIGTERM/SIGINT (leadership transfer first, then the listener). A repeat
 * within 1.5 s is the same request (`npx tsx`/`npx bun run` deliver one Ctrl-C twice); a later one, or a
 * third, exits at once with status 130 (runtime-adapters/signals.ts).
 *
 * With no node id and no peers configured it runs a single-node cluster: node id "n1", bootstrapped with
 * itself as the only voter, data in ./data. Exit status: 0 after a graceful stop, 1 on a fatal error,
 * 2 on invalid configuration (the message names the field and its source; also a cluster id other than the
 * one recorded in the data dir).
 * Prints one line on stdout when ready: `edgekv <id> serving clients on <url> (peers on <url>)`.
 */
import process from "node:process";
import { readFileSync } from "node:fs";
import { ConfigError, configHelp, isHelpRequested, loadConfig } from "./src/config/load.ts";
import type { Config } from "./src/config/schema.ts";
import { EdgeNode } from "./src/server/node.ts";
import { DataDirLockedError, DiskFullError } from "./src/server/data-dir-lock.ts";
import { createNodePorts } from "./runtime-adapters/ports.ts";
import { serveHttp } from "./runtime-adapters/serve.ts";
import { onStopSignal } from "./runtime-adapters/signals.ts";
import { currentRuntime } from "./runtime-adapters/runtime.ts";
import { tryBind } from "./runtime-adapters/port-check.ts";

/** The default node id of a node started without one (single-node quick start). */
const DEFAULT_NODE_ID = "n1";

/**
 * Resolves the configuration; a missing node id defaults to "n1", and no peers means a single-node cluster
 * bootstrapped with this node as its only voter. Throws ConfigError (exit 2) for anything invalid.
 */
function resolveConfig(argv: string[], env: Record<string, string | undefined>): Config {
  const readFile = (path: string) => readFileSync(path, "utf8");
  let config: Config;
  try {
    config = loadConfig({ argv, env, readFile });
  } catch (e) {
    if (!(e instanceof ConfigError && e.field === "nodeId" && e.source === "")) throw e;
    config = loadConfig({ argv: [...argv, "--node-id", DEFAULT_NODE_ID], env, readFile });
  }
  if (Object.keys(config.peers).length === 0) {
    // Single node: bootstrap is a no-op once the data dir holds state, so this is safe on every restart.
    config = { ...config, peers: { [config.nodeId]: config.advertisePeerUrl }, bootstrap: true };
  }
  return config;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (isHelpRequested(argv)) {
    process.stdout.write(configHelp());
    return;
  }
  let config: Config;
  try {
    config = resolveConfig(argv, process.env);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`edgekv: invalid configuration: ${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
  // Before the data dir is opened (and maybe bootstrapped): a busy port is a start-up refusal with a code,
  // not a node that bootstraps, elects itself and then dies on the bind (U5).
  for (const [what, host, port, flag] of [["client", config.clientHost, config.clientPort, "--client-port"], ["peer", config.peerHost, config.peerPort, "--peer-port"]] as const) {
    if (port === 0) continue;
    const problem = await tryBind(port, host);
    if (problem !== undefined) {
      process.stderr.write(`edgekv: port_in_use: the ${what} port ${port} on ${host} cannot be listened on (${problem}); stop what holds it or pick another with ${flag}\n`);
      process.exit(2);
    }
  }
  const ports = await createNodePorts({ logLevel: config.logLevel, name: config.nodeId });
  ports.log("info", `starting on ${currentRuntime()}: data ${config.dataDir}, peers ${JSON.stringify(config.peers)}`);
  if (currentRuntime() === "bun" && process.env.MIMALLOC_PURGE_HOLES === undefined) {
    // Read by Bun's allocator at process start only, so a hint is all this process can do (docs/deploy.md).
    ports.log("info", "MIMALLOC_PURGE_HOLES is not set: Bun's allocator spends about a quarter of this node's CPU under writes; start it with MIMALLOC_PURGE_HOLES=0 (docs/deploy.md, \"Bun's allocator\")");
  }
  // One stop handler from here to the end. Opening may wait a long time (a member with an empty data dir waits
  // for a peer to confirm its identity); a stop signal meanwhile stops it with status 0, as later. (A second
  // handler installed once serving left a window: a signal pending while the first was removed was dropped,
  // and the node went on serving; B6.)
  let node: EdgeNode | undefined;
  let server: Awaited<ReturnType<typeof serveHttp>> | undefined;
  onStopSignal(
    async () => {
      if (!node || !server) {
        await node?.stop().catch(() => {});
        ports.log("info", "stopped before serving (it was still starting)");
        return;
      }
      // Leader hands over first (in-flight requests finish or get a definite error), then the listener goes.
      await node.stop();
      await server.close();
      ports.log("info", "stopped");
    },
    (msg) => ports.log("info", msg),
  );
  const opened = await EdgeNode.open(config, ports).catch((e: unknown) => {
    // The data dir disagrees with the configuration (another cluster id): a configuration error, exit 2.
    if (e instanceof ConfigError) {
      process.stderr.write(`edgekv: invalid configuration: ${e.message}\n`);
      process.exit(2);
    }
    throw e;
  });
  node = opened;
  await opened.start();
  const listening = await serveHttp({ host: config.clientHost, port: config.clientPort, maxConnections: config.maxConnections, fetch: (r) => opened.fetch(r) });
  server = listening;
  opened.onFatal(() => {
    // The node already logged the error and stopped serving; exit so the supervisor sees it (status 1).
    void listening.close().finally(() => process.exit(1));
    setTimeout(() => process.exit(1), 2000).unref?.();
  });
  process.stdout.write(`edgekv ${opened.id} serving clients on ${listening.url} (peers on ${config.advertisePeerUrl})\n`);
}

main().catch((e: unknown) => {
  // A data dir in use, or a full disk, is a refusal, not a crash: its message says everything, no stack.
  if (e instanceof DataDirLockedError || e instanceof DiskFullError) process.stderr.write(`edgekv: ${e.code}: ${e.message}\n`);
  else process.stderr.write(`edgekv: fatal: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
