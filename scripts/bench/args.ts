/**
 * Command-line parsing shared by the benchmark scripts (bench.ts, bench/probe.ts, bench-storage.ts,
 * bench-write-path.ts): node:util `parseArgs` in strict mode plus `--help`/`-h`. `--help` prints the usage
 * text to stdout and exits 0 before anything starts; an unknown option, a missing value or a value out of
 * range prints the problem and the usage line to stderr and exits 2 (the usage-error status of the project's
 * other commands, e.g. scripts/cluster.ts, scripts/nemesis.ts). Works on Node, Bun and Deno.
 */
import { parseArgs } from "node:util";
import process from "node:process";

/** One option: `string` takes a value (repeatable with `multiple`), `boolean` is a switch. */
export interface OptionSpec {
  type: "string" | "boolean";
  multiple?: boolean;
}

/** Typed accessors over the parsed command line; each exits 2 with the usage text on a bad value. */
export interface CommandLine {
  /** True when the switch `--name` was given. */
  flag(name: string): boolean;
  /** The value of `--name`, or `dflt`. */
  str(name: string, dflt: string): string;
  /** Every value of a repeatable `--name` (empty when absent). */
  strs(name: string): string[];
  /** The value of `--name` as an integer in [min, max], or `dflt`. */
  int(name: string, dflt: number, min: number, max: number): number;
  /** The value of `--name`, which must be one of `choices`, or `dflt`. */
  choice<T extends string>(name: string, dflt: T, choices: readonly T[]): T;
  /** Arguments that are not options (only when the caller allowed them). */
  positionals: string[];
  /** Exits 2 after printing `msg` and the usage line to stderr. */
  usageError(msg: string): never;
}

/**
 * Parses `argv` (default: this process's arguments) against `options`. `usage` is the whole help text; its
 * first line is repeated under a usage error.
 * Exits the process (0 for --help, 2 for a usage error); otherwise returns the accessors.
 */
export function commandLine(usage: string, options: Record<string, OptionSpec>, allowPositionals = false, argv = process.argv.slice(2)): CommandLine {
  const usageError = (msg: string): never => {
    process.stderr.write(`${msg}\n${usage.split("\n")[0]}\n(--help prints every option)\n`);
    process.exit(2);
  };
  let parsed: { values: Record<string, string | boolean | Array<string | boolean> | undefined>; positionals: string[] };
  try {
    parsed = parseArgs({ args: argv, options: { ...options, help: { type: "boolean", short: "h" } }, strict: true, allowPositionals });
  } catch (e) {
    return usageError((e as Error).message);
  }
  if (parsed.values.help) {
    process.stdout.write(usage.trimEnd() + "\n");
    process.exit(0);
  }
  const v = parsed.values;
  const str = (name: string, dflt: string): string => (typeof v[name] === "string" ? (v[name] as string) : dflt);
  return {
    flag: (name) => v[name] === true,
    str,
    strs: (name) => (Array.isArray(v[name]) ? (v[name] as string[]) : []),
    int(name, dflt, min, max) {
      if (v[name] === undefined) return dflt;
      const text = str(name, "");
      const n = Number(text);
      if (text.trim() === "" || !Number.isInteger(n) || n < min || n > max) usageError(`--${name} must be an integer in [${min}, ${max}], got ${JSON.stringify(text)}`);
      return n;
    },
    choice(name, dflt, choices) {
      const s = str(name, dflt);
      if (!(choices as readonly string[]).includes(s)) usageError(`--${name} must be one of ${choices.join(", ")}, got ${JSON.stringify(s)}`);
      return s as typeof dflt;
    },
    positionals: parsed.positionals,
    usageError,
  };
}
