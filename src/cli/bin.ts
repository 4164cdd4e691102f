/**
 * Process entry of the `edgekv` CLI (bin/edgekv.mjs loads it): wires `runCli` to argv, stdout/stderr,
 * the environment, files, stdin (text for `txn -`, bytes for `put KEY -`) and Ctrl-C/SIGTERM, then exits with its code once output is flushed.
 */
import process from "node:process";
import { readFile } from "node:fs/promises";
import { runCli } from "./main.ts";

/** Reads all of stdin, byte for byte (for `edgekv put KEY -`). */
async function readStdinBytes(): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Uint8Array);
  return new Uint8Array(Buffer.concat(chunks));
}

/** Reads all of stdin as UTF-8 (for `edgekv txn -`). */
async function readStdin(): Promise<string> {
  return new TextDecoder().decode(await readStdinBytes());
}

/**
 * After Ctrl-C or SIGTERM, how long the command may take to end on its own before the process exits with
 * status 130, ms. A watch or lease keepalive ends at once (exit 0); a command that does not listen (e.g. a
 * get still retrying a dead endpoint) is cut off after this.
 */
const INTERRUPT_GRACE_MS = 1000;
const interrupt = new AbortController();
const onInterrupt = () => {
  // `npx edgekv` can deliver one Ctrl-C twice (npm forwards it; the process group gets it too): a repeat
  // changes nothing, the grace timer already bounds the exit.
  if (interrupt.signal.aborted) return;
  interrupt.abort();
  const t = setTimeout(() => process.exit(130), INTERRUPT_GRACE_MS) as { unref?: () => void };
  t.unref?.();
};
process.on("SIGINT", onInterrupt);
process.on("SIGTERM", onInterrupt);
// A reader that went away (`edgekv watch ... | head -1`): end quietly with status 141, as a process killed
// by SIGPIPE does in a shell, instead of an unhandled EPIPE stack trace (new-user trial U4).
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code === "EPIPE") process.exit(141);
    throw e;
  });
}
const code = await runCli(process.argv.slice(2), {
  out: (line) => void process.stdout.write(line + "\n"),
  err: (line) => void process.stderr.write(line + "\n"),
  writeBytes: (b) => void process.stdout.write(b),
  env: process.env,
  readFile: (path) => readFile(path, "utf8"),
  readFileBytes: async (path) => new Uint8Array(await readFile(path)),
  readStdin,
  readStdinBytes,
  signal: interrupt.signal,
});
// Exit explicitly (keep-alive sockets would hold the process), after stdout has drained.
process.stdout.write("", () => process.exit(code));
