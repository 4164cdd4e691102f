/**
 * SIGTERM/SIGINT handling for an entry point. `node:process` signal events work on all three runtimes (Bun
 * and Deno implement them; checked by test/integration/serve.test.ts, which signals a child on the runtime
 * under test). Fly.io stops a Machine with `kill_signal` (SIGTERM in deploy/fly.toml), then SIGKILL after
 * `kill_timeout`.
 */
import process from "node:process";

/** The signals that ask a node to stop gracefully. */
export type StopSignal = "SIGTERM" | "SIGINT";

/**
 * Calls `onStop(signal)` once on the first SIGTERM or SIGINT, then exits with status 0 when it resolves (1 if it
 * rejects). A second signal while stopping exits at once with status 130 (the operator insisted). Returns a
 * function that removes the handlers.
 */
export function onStopSignal(onStop: (signal: StopSignal) => Promise<void>, log: (msg: string) => void = () => {}): () => void {
  let stopping = false;
  const handler = (signal: StopSignal) => {
    if (stopping) {
      log(`${signal} again while stopping: exiting now`);
      process.exit(130);
    }
    stopping = true;
    log(`${signal}: stopping`);
    onStop(signal).then(
      () => process.exit(0),
      (e: unknown) => {
        log(`stop failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
        process.exit(1);
      },
    );
  };
  const term = () => handler("SIGTERM");
  const int = () => handler("SIGINT");
  process.on("SIGTERM", term);
  process.on("SIGINT", int);
  return () => {
    process.off("SIGTERM", term);
    process.off("SIGINT", int);
  };
}
