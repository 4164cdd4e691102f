/**
 * SIGTERM/SIGINT handling for an entry point. `node:process` signal events work on all three runtimes (Bun
 * and Deno implement them; checked by test/integration/serve.test.ts, which signals a child on the runtime
 * under test). Fly.io stops a Machine with `kill_signal` (SIGTERM in deploy/fly.toml), then SIGKILL after
 * `kill_timeout`.
 *
 * One Ctrl-C often arrives twice: `npx tsx node.ts` and `npx bun run node.ts` forward the terminal's SIGINT
 * to the node, which also gets it directly as a member of the terminal's process group. So a repeat within
 * `repeatWindowMs` of the first signal is the same request; only a later one, or a third, forces the exit.
 */
import process from "node:process";

/** The signals that ask a node to stop gracefully. */
export type StopSignal = "SIGTERM" | "SIGINT";

/**
 * Default window, ms, in which a repeated stop signal counts as the first one. The doubled Ctrl-C of a
 * wrapper arrives within a few ms; an operator pressing Ctrl-C again to insist takes longer than this.
 */
export const STOP_REPEAT_WINDOW_MS = 1500;

/** Options of `onStopSignal`. */
export interface StopSignalOptions {
  /** A repeat this many ms or less after the first signal is the same request (default STOP_REPEAT_WINDOW_MS). */
  repeatWindowMs?: number;
}

/**
 * Calls `onStop(signal)` once on the first SIGTERM or SIGINT, then exits with status 0 when it resolves (1 if it
 * rejects). While stopping, a second signal within `repeatWindowMs` of the first is logged and ignored (a
 * wrapper's doubled Ctrl-C); a signal after that window, or any third signal, exits at once with status 130
 * (the operator insisted; logged as "exiting now"). Returns a function that removes the handlers.
 */
export function onStopSignal(onStop: (signal: StopSignal) => Promise<void>, log: (msg: string) => void = () => {}, opts: StopSignalOptions = {}): () => void {
  const windowMs = opts.repeatWindowMs ?? STOP_REPEAT_WINDOW_MS;
  let firstAtMs: number | undefined;
  let repeats = 0;
  const handler = (signal: StopSignal) => {
    const nowMs = performance.now();
    if (firstAtMs !== undefined) {
      const afterMs = Math.round(nowMs - firstAtMs);
      if (repeats === 0 && afterMs <= windowMs) {
        repeats++;
        log(`${signal} again ${afterMs} ms after the first: same stop request, still stopping gracefully (send it again to exit at once)`);
        return;
      }
      log(`${signal} again while stopping (${afterMs} ms after the first): exiting now without a graceful stop`);
      process.exit(130);
    }
    firstAtMs = nowMs;
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
