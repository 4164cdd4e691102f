/**
 * `edgekv` command line: `edgekv [--endpoints URL,...] [--json] [--timeout-ms N] COMMAND ...` (docs/client.md).
 * `runCli` is the whole program as a function (argv in, exit code out, output through `io`), so tests run
 * it in-process with an injected fetch; bin/edgekv.mjs calls it with the real process.
 *
 * Exit codes: 0 ok; 1 request failed (stderr: `error: <code>: <message>`); 2 usage error; 3 txn or
 * precondition (`compare_failed`) not satisfied.
 */
import { parseArgs } from "node:util";
import { BadRequestError, EdgeKvClient, EdgeKvError } from "../client/index.ts";
import { cmdCompact, cmdDel, cmdGet, cmdLease, cmdMembers, cmdPut, cmdRange, cmdStatus, cmdTxn, cmdWatch, UsageError, positiveIntFlag, type CliFiles, type CliFlags, type CliIo } from "./commands.ts";

/** etcdctl command names an etcd user types first, and what they are here (a hint with "unknown command"). */
const ETCDCTL_NAMES: Record<string, string> = {
  member: "edgekv members [list | add | promote | remove]",
  endpoint: "edgekv status",
  compaction: "edgekv compact REVISION",
  "move-leader": "edgekv members transfer-leader ID",
};

/** Largest `--timeout-ms`: the runtimes' timer limit, 2^31 - 1 ms. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/** Default endpoint when neither `--endpoints` nor `EDGEKV_ENDPOINTS` is given (DESIGN.md port 8080). */
export const DEFAULT_ENDPOINT = "http://127.0.0.1:8080";

/** One-line summary and usage of each command, for `--help`. */
export const COMMAND_HELP: Record<string, string> = {
  get:
    "edgekv get KEY [--consistency linearizable|lease|stale] [--revision N] [--raw]\n" +
    "  Print the value of KEY as text plus a newline (exit 1, not_found, when absent); with --raw write its bytes\n" +
    "  to stdout exactly, no newline added (binary values: `edgekv get photo --raw > photo.jpg`).",
  put:
    "edgekv put KEY VALUE|- [--file PATH] [--lease ID] [--if-match MOD_REVISION | --if-absent]\n" +
    "  Write VALUE at KEY; --if-match is compare-and-swap, --if-absent create-only (exit 3 if the condition fails).\n" +
    "  The value comes from the VALUE argument, from stdin with - (e.g. `cat photo.jpg | edgekv put photo -`), or\n" +
    "  from a file with --file PATH (then no VALUE); stdin and files are stored byte for byte, a trailing\n" +
    "  newline included. A missing file, or a VALUE and --file together, is a usage error (exit 2).",
  del: "edgekv del KEY [--if-match MOD_REVISION] | --prefix P | --start A [--end B]\n  Delete a key or a range (`delete` is the same command).",
  range: "edgekv range --prefix P | --start A [--end B] [--limit N] [--keys-only] [--count-only] [--revision N] [--consistency C]\n  List keys and values (end exclusive; no end = every key >= A).",
  txn: "edgekv txn FILE|-\n  Run a transaction from JSON: {\"compare\":[{\"key\",\"target\",\"result\",\"value\"}],\"success\":[{\"op\":\"put\",\"key\",\"value\"}],\"failure\":[...]}\n  (exit 3 when the compares fail).",
  lease:
    "edgekv lease grant TTL_SECONDS | keepalive ID [--once] | revoke ID | ttl ID [--keys]\n" +
    "  Manage leases. keepalive renews the lease every third of its TTL, one line per renewal, until Ctrl-C or\n" +
    "  SIGTERM (exit 0) or until the lease is gone (exit 1, lease_not_found); --once renews it once.",
  watch: "edgekv watch KEY | --prefix P | --start A [--end B] [--from-revision N] [--count N]\n  Print changes as they happen (until N events, or Ctrl-C).",
  members: "edgekv members [list] | add ID PEER_URL CLIENT_URL | promote ID | remove ID | transfer-leader ID\n  Show or change the cluster membership.",
  status: "edgekv status\n  Show each endpoint's view: id, leader, term, commit and applied index, revision.",
  compact: "edgekv compact REVISION\n  Discard history before REVISION (an integer >= 1).",
};

/** Top-level help text. */
export function helpText(): string {
  return [
    "usage: edgekv [--endpoints URL,...] [--json] [--timeout-ms N] COMMAND [ARGS] [--help]   (or: edgekv help [COMMAND])",
    "",
    "Global options:",
    `  --endpoints URL,...   client API URLs (default $EDGEKV_ENDPOINTS or ${DEFAULT_ENDPOINT})`,
    "  --json                machine-readable output (values base64)",
    "  --timeout-ms N        per-request deadline including retries, ms >= 1 (default 30000)",
    "",
    "Commands:",
    ...Object.values(COMMAND_HELP).map((h) => "  " + h.split("\n")[0]),
    "",
    "Exit codes: 0 ok, 1 request failed, 2 usage error, 3 condition not met.",
  ].join("\n");
}

/** What `runCli` needs from its environment. */
export interface CliEnv extends CliIo, CliFiles {
  /** Environment variables (EDGEKV_ENDPOINTS). */
  env: Record<string, string | undefined>;
  /** fetch for the SDK (tests inject the app). */
  fetch?: typeof fetch;
  /** Aborts a running `watch` or `lease keepalive` (Ctrl-C, SIGTERM). */
  signal?: AbortSignal;
}

const OPTIONS = {
  endpoints: { type: "string" },
  json: { type: "boolean" },
  "timeout-ms": { type: "string" },
  help: { type: "boolean", short: "h" },
  consistency: { type: "string" },
  revision: { type: "string" },
  lease: { type: "string" },
  "if-match": { type: "string" },
  "if-absent": { type: "boolean" },
  prefix: { type: "string" },
  start: { type: "string" },
  end: { type: "string" },
  limit: { type: "string" },
  "keys-only": { type: "boolean" },
  "count-only": { type: "boolean" },
  "from-revision": { type: "string" },
  count: { type: "string" },
  keys: { type: "boolean" },
  file: { type: "string" },
  raw: { type: "boolean" },
  once: { type: "boolean" },
} as const;

/** The flags whose value is a number, and what each takes (for the message when given a negative number). */
const NUMERIC_FLAGS: Record<string, string> = {
  "--timeout-ms": "an integer >= 1",
  "--revision": "a non-negative integer",
  "--if-match": "a non-negative integer",
  "--limit": "a non-negative integer",
  "--from-revision": "an integer >= 1",
  "--count": "an integer >= 1",
  "--lease": "a positive decimal integer (a lease id)",
};

/** A negative number as typed: "-5", "-1.5", "-.5", "-1e3" (a minus sign, then a digit or a dot and a digit). */
const NEGATIVE_NUMBER = /^-\.?[0-9]/;

/** Whether `arg` is a long option that takes its value from the next argument (`--limit`, not `--limit=5`). */
function takesValue(arg: string | undefined): boolean {
  const name = arg?.startsWith("--") && !arg.includes("=") ? arg.slice(2) : undefined;
  return name !== undefined && (OPTIONS as Record<string, { type: string }>)[name]?.type === "string";
}

/** The command word of an argv that parseArgs refused: its first argument that is neither a flag nor a flag's value. */
function commandWord(argv: string[]): string | undefined {
  return argv.find((a, i) => !a.startsWith("-") && !takesValue(argv[i - 1]));
}

/**
 * The usage message for an argv that parseArgs refused with `err`. A negative number given to a numeric flag
 * (`--revision -1`) is refused as "ambiguous": say what the flag takes instead. Every other refusal (an
 * unknown option, `--prefix -a`) keeps parseArgs's own message, which shows the `-- "-a"` or `--prefix=-a` form.
 */
function parseFailure(argv: string[], err: unknown): string {
  const message = (err as Error)?.message ?? String(err);
  const flag = (err as { code?: string })?.code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE" ? /^Option '(--[a-z-]+)' argument is ambiguous/.exec(message)?.[1] : undefined;
  const end = argv.includes("--") ? argv.indexOf("--") : argv.length;
  const at = flag === undefined ? -1 : argv.slice(0, end).findIndex((a, i) => a === flag && NEGATIVE_NUMBER.test(argv[i + 1] ?? ""));
  return at >= 0 && NUMERIC_FLAGS[flag!] ? `${flag} must be ${NUMERIC_FLAGS[flag!]}, got ${JSON.stringify(argv[at + 1])}` : message;
}

/** A command word as the CLI knows it: `delete` is `del` (etcdctl's name), for its flags and its help too. */
const canonical = (word: string) => (word === "delete" ? "del" : word);

/** The message for a command word the CLI does not have, with the edgekv form of an etcdctl name. */
function unknownCommand(word: string): string {
  const hint = ETCDCTL_NAMES[word];
  return `unknown command ${JSON.stringify(word)}${hint ? ` (etcdctl's ${word}: here \`${hint}\`)` : ""}; run \`edgekv --help\``;
}

/** Flags every command takes. */
const GLOBAL_FLAGS = ["endpoints", "json", "timeout-ms", "help"];

/**
 * The flags each command reads, besides {@link GLOBAL_FLAGS}; any other is a usage error naming them, as etcdctl
 * refuses a flag its command does not define (ignored, `del --prefix p --count-only` deleted and `compact 1
 * --revision 5` compacted). `get` lists `--prefix` and `--start` so that it can point to `range`.
 */
const COMMAND_FLAGS: Record<string, string[]> = {
  get: ["consistency", "revision", "raw", "prefix", "start"],
  put: ["lease", "if-match", "if-absent", "file"],
  del: ["if-match", "prefix", "start", "end"],
  range: ["prefix", "start", "end", "limit", "keys-only", "count-only", "revision", "consistency"],
  txn: [],
  lease: ["once", "keys"],
  watch: ["prefix", "start", "end", "from-revision", "count"],
  members: [],
  status: [],
  compact: [],
};

/** UsageError when `given` (the flags parsed) holds one that `command` does not read; nothing for an unknown command. */
function checkFlags(command: string, given: string[]): void {
  // `get --prefix P --keys-only` is a range: get's own message points to `edgekv range`, which takes them all.
  if (command === "get" && (given.includes("prefix") || given.includes("start"))) return;
  const allowed = COMMAND_FLAGS[command];
  const extra = allowed ? given.filter((f) => !GLOBAL_FLAGS.includes(f) && !allowed.includes(f)) : [];
  if (extra.length === 0) return;
  const own = command === "get" ? allowed!.filter((f) => f !== "prefix" && f !== "start") : allowed!;
  throw new UsageError(`--${extra[0]} does not apply to ${command}; ${own.length ? `its flags: ${own.map((f) => `--${f}`).join(", ")}` : "it takes no flags"} (and --endpoints, --json, --timeout-ms)`);
}

/** Runs the CLI with `argv` (without the program name); resolves with the exit code. Never throws. */
export async function runCli(argv: string[], io: CliEnv): Promise<number> {
  let parsed;
  // parseArgs reads "-5" as an unknown option. A negative number where a positional belongs (not right after
  // an option that takes a value) is a positional: `put k -5` stores "-5", and `compact -3` reaches the command,
  // whose message names REVISION. It stands in as a placeholder while parsing (no option starts with a digit
  // or a dot, so this is never ambiguous); a key or value like "-x" still goes after "--", as parseArgs's
  // message says.
  const negatives = new Map<string, string>();
  const end = argv.includes("--") ? argv.indexOf("--") : argv.length;
  const args = argv.map((a, i) => {
    if (i >= end || !NEGATIVE_NUMBER.test(a) || takesValue(argv[i - 1])) return a;
    const stand = `\u0000positional-${i}`;
    negatives.set(stand, a);
    return stand;
  });
  try {
    parsed = parseArgs({ args, options: OPTIONS, allowPositionals: true, strict: true });
    parsed.positionals = parsed.positionals.map((p) => negatives.get(p) ?? p);
  } catch (err) {
    io.err(`error: usage: ${parseFailure(argv, err)}`);
    // `edgekv get --prefix` with nothing after it fails here ("argument missing"): the hint get gives too.
    if (commandWord(argv) === "get" && argv.includes("--prefix")) io.err("get reads one key; to list a prefix use `edgekv range --prefix P`");
    io.err("run `edgekv --help` for usage");
    return 2;
  }
  const flags = parsed.values as CliFlags & { endpoints?: string; help?: boolean; "timeout-ms"?: string };
  const [typed, ...pos] = parsed.positionals;
  const command = typed === undefined ? undefined : canonical(typed);
  if (!command) {
    (flags.help ? io.out : io.err)(helpText());
    return flags.help ? 0 : 2;
  }
  // `edgekv help`, `edgekv help COMMAND` (as etcdctl has them) and `edgekv COMMAND --help`.
  if (command === "help" && pos.length === 0) {
    io.out(helpText());
    return 0;
  }
  if (command === "help" && pos.length > 1) {
    io.err("error: usage: edgekv help [COMMAND]");
    return 2;
  }
  if (command === "help" || flags.help) {
    const name = command === "help" ? canonical(pos[0]!) : command;
    const h = COMMAND_HELP[name];
    if (!h) {
      io.err(`error: usage: ${unknownCommand(name)}`);
      return 2;
    }
    io.out("usage: " + h);
    return 0;
  }
  const endpoints = (flags.endpoints ?? io.env.EDGEKV_ENDPOINTS ?? DEFAULT_ENDPOINT).split(",").map((s) => s.trim()).filter(Boolean);
  const endpointsFrom = flags.endpoints === undefined && io.env.EDGEKV_ENDPOINTS !== undefined ? "$EDGEKV_ENDPOINTS" : "--endpoints";
  try {
    checkFlags(command, Object.keys(flags));
    const timeoutMs = positiveIntFlag("timeout-ms", flags["timeout-ms"]);
    // Timers take at most 2^31 - 1 ms (about 24.8 days); more was an internal error from setTimeout (B9).
    if (timeoutMs !== undefined && timeoutMs > MAX_TIMEOUT_MS) throw new UsageError(`--timeout-ms must be at most ${MAX_TIMEOUT_MS} (about 24.8 days), got "${flags["timeout-ms"]}"`);
    const make = (eps: string[]) => new EdgeKvClient({ endpoints: eps, ...(timeoutMs ? { timeoutMs } : {}), ...(io.fetch ? { fetch: io.fetch } : {}) });
    let client: EdgeKvClient;
    try {
      client = make(endpoints);
    } catch (err) {
      // A malformed --endpoints / $EDGEKV_ENDPOINTS is the caller's mistake: usage error, exit 2.
      throw new UsageError(`${endpointsFrom}: ${(err as Error)?.message ?? String(err)}`);
    }
    switch (command) {
      case "get":
        return await cmdGet(client, pos, flags, io);
      case "put":
        return await cmdPut(client, pos, flags, io, io);
      case "del":
        return await cmdDel(client, pos, flags, io);
      case "range":
        return await cmdRange(client, pos, flags, io);
      case "txn":
        return await cmdTxn(client, pos, flags, io, io.readFile);
      case "lease":
        return await cmdLease(client, pos, flags, io, io.signal);
      case "watch":
        return await cmdWatch(client, pos, flags, io, io.signal);
      case "members":
        return await cmdMembers(client, pos, flags, io);
      case "status":
        if (pos.length > 0) throw new UsageError(`status takes no arguments (got ${JSON.stringify(pos.join(" "))}); the nodes it asks are --endpoints`);
        return await cmdStatus(endpoints, (e) => make([e]), flags, io, timeoutMs);
      case "compact":
        return await cmdCompact(client, pos, flags, io);
      default: {
        throw new UsageError(unknownCommand(command));
      }
    }
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`error: ${err.message.startsWith("usage:") ? err.message : "usage: " + err.message}`);
      return 2;
    }
    // The SDK refusing an argument before sending anything (status 0, e.g. an empty key or an inverted range)
    // is a bad argument like any other: exit 2.
    if (err instanceof BadRequestError && err.status === 0) {
      io.err(`error: usage: ${err.message}`);
      return 2;
    }
    if (err instanceof EdgeKvError) {
      io.err(`error: ${err.code}: ${err.message}`);
      return err.code === "compare_failed" ? 3 : 1;
    }
    io.err(`error: internal: ${(err as Error)?.message ?? String(err)}`);
    return 1;
  }
}
