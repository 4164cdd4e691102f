/**
 * Loads the node configuration from, later overriding earlier (DESIGN.md "Configuration defaults"):
 * defaults -> YAML file (`--config path`) -> environment (`EDGEKV_*`, plus Fly.io's `FLY_*` as hints for
 * defaults) -> command-line flags (`--peer-port 7001` or `--peer-port=7001`). Every value is checked by its
 * field's zod schema as soon as it is read, so an error names the field and where the bad value came from.
 */
import { parse as parseYaml } from "yaml";
import { CONFIG_FIELDS, type Config, type ConfigKey, type FieldSpec, crossFieldProblem, envName, flagName } from "./schema.ts";
import { peersProblem } from "./peers.ts";

/** Where a value came from; part of every `ConfigError`. */
export type ConfigSource = "default" | "file" | "env" | "flag";

/** Invalid configuration. `field` is the config field (or "" for a problem with no field, e.g. an unreadable file). */
export class ConfigError extends Error {
  constructor(
    readonly field: string,
    readonly source: ConfigSource | "",
    message: string,
  ) {
    super(message);
    this.name = "ConfigError";
  }
}

/** Inputs of `loadConfig`; file reading is injected so the loader needs no runtime API. */
export interface LoadConfigInput {
  /** Command-line arguments after the program name. */
  argv: string[];
  /** Environment variables. */
  env: Record<string, string | undefined>;
  /** Reads a whole text file (the `--config` path); may throw, which becomes a `ConfigError`. */
  readFile?: (path: string) => string;
}

const KEYS = Object.keys(CONFIG_FIELDS) as ConfigKey[];
const BY_FLAG = new Map(KEYS.map((k) => [flagName(k), k]));

/** True when argv asks for help (`--help` or `-h`); the caller prints `configHelp()` and exits. */
export function isHelpRequested(argv: string[]): boolean {
  return argv.includes("--help") || argv.includes("-h");
}

/**
 * Resolves the configuration. Throws `ConfigError` naming the field and source for: an unknown flag or file
 * key, a value its schema refuses, a missing `nodeId`, a short `clusterSecret` on Fly.io, an unreadable or
 * non-mapping YAML file, a broken cross-field rule (see `crossFieldProblem`) or peer-list rule (see
 * `peersProblem`: duplicate URLs, a bootstrap without this node, an own entry off `peerPort`). Unknown `EDGEKV_*`
 * variables are ignored (the test runner and tools set their own).
 */
export function loadConfig(input: LoadConfigInput): Config {
  const { argv, env } = input;
  const flags = parseFlags(argv);
  const onFly = Boolean(env.FLY_APP_NAME);
  // `where`: the flag, variable or file that set the value, for messages about rules across fields.
  const values = new Map<ConfigKey, { value: unknown; source: ConfigSource; where?: string }>();
  const set = (key: ConfigKey, raw: unknown, source: ConfigSource, where: string) => {
    values.set(key, { value: coerce(key, CONFIG_FIELDS[key], raw, source, where), source, where });
  };

  for (const key of KEYS) {
    const d = CONFIG_FIELDS[key].default;
    if (d !== undefined) values.set(key, { value: structuredCopy(d), source: "default" });
  }
  if (env.FLY_MACHINE_ID) set("nodeId", env.FLY_MACHINE_ID, "default", "FLY_MACHINE_ID");
  if (env.FLY_APP_NAME) set("clusterId", env.FLY_APP_NAME, "default", "FLY_APP_NAME");

  if (flags.configPath !== undefined) {
    for (const [key, raw] of readYaml(flags.configPath, input.readFile)) set(key, raw, "file", flags.configPath);
  }
  for (const key of KEYS) {
    const name = envName(key);
    const raw = env[name];
    if (raw !== undefined && raw !== "") set(key, raw, "env", name);
  }
  for (const [key, raw] of flags.values) set(key, raw, "flag", flagName(key));

  const get = <K extends ConfigKey>(k: K) => values.get(k)?.value as Config[K] | undefined;
  if (get("nodeId") === undefined) {
    throw new ConfigError("nodeId", "", `nodeId is required: set --node-id, EDGEKV_NODE_ID or nodeId in the config file`);
  }
  const localHost = onFly ? "::" : "127.0.0.1";
  if (get("clientHost") === undefined) values.set("clientHost", { value: localHost, source: "default" });
  if (get("peerHost") === undefined) values.set("peerHost", { value: localHost, source: "default" });
  const advertiseHost = (listenHost: string): string => {
    if (onFly && env.FLY_MACHINE_ID) return `${env.FLY_MACHINE_ID}.vm.${env.FLY_APP_NAME}.internal`;
    if (onFly && env.FLY_PRIVATE_IP) return `[${env.FLY_PRIVATE_IP}]`;
    if (listenHost === "::" || listenHost === "0.0.0.0") return "127.0.0.1";
    return listenHost.includes(":") ? `[${listenHost}]` : listenHost;
  };
  if (get("advertiseClientUrl") === undefined) {
    values.set("advertiseClientUrl", { value: `http://${advertiseHost(get("clientHost")!)}:${get("clientPort")}`, source: "default" });
  }
  if (get("advertisePeerUrl") === undefined) {
    values.set("advertisePeerUrl", { value: `http://${advertiseHost(get("peerHost")!)}:${get("peerPort")}`, source: "default" });
  }

  const config = Object.fromEntries(KEYS.map((k) => [k, values.get(k)!.value])) as unknown as Config;
  if (onFly && config.clusterSecret.length < 16) {
    throw new ConfigError("clusterSecret", values.get("clusterSecret")!.source, "clusterSecret must be at least 16 characters on Fly.io (set EDGEKV_CLUSTER_SECRET as a Fly secret)");
  }
  const origin = (key: ConfigKey): string => {
    const v = values.get(key)!;
    return v.where && v.where !== v.source ? `${v.source} ${v.where}` : v.source;
  };
  const problem = crossFieldProblem(config) ?? peersProblem(config, origin);
  if (problem) {
    const [field, why] = problem;
    const v = values.get(field)!;
    throw new ConfigError(field, v.source, `invalid ${field} from ${v.source}${v.where ? ` (${v.where})` : ""}: ${why}`);
  }
  return config;
}

function structuredCopy<T>(v: T): T {
  return typeof v === "object" && v !== null ? ({ ...(v as object) } as T) : v;
}

interface ParsedFlags {
  configPath?: string;
  values: Array<[ConfigKey, string | boolean]>;
}

function parseFlags(argv: string[]): ParsedFlags {
  const out: ParsedFlags = { values: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--help" || arg === "-h") continue;
    if (!arg.startsWith("--")) throw new ConfigError("", "flag", `unexpected argument ${JSON.stringify(arg)} (flags look like --peer-port 7001)`);
    const eq = arg.indexOf("=");
    const name = eq >= 0 ? arg.slice(0, eq) : arg;
    let value: string | undefined = eq >= 0 ? arg.slice(eq + 1) : undefined;
    if (name === "--config") {
      if (value === undefined) value = argv[++i];
      if (value === undefined) throw new ConfigError("", "flag", "--config needs a file path");
      out.configPath = value;
      continue;
    }
    const negated = name.startsWith("--no-") ? BY_FLAG.get("--" + name.slice(5)) : undefined;
    if (negated && CONFIG_FIELDS[negated].kind === "boolean" && value === undefined) {
      out.values.push([negated, false]);
      continue;
    }
    const key = BY_FLAG.get(name);
    if (!key) throw new ConfigError("", "flag", `unknown flag ${name} (see --help)`);
    if (value === undefined) {
      const next = argv[i + 1];
      // A boolean flag alone means true; `--bootstrap false` is also accepted.
      if (CONFIG_FIELDS[key].kind === "boolean" && (next === undefined || !/^(true|false|1|0|yes|no)$/i.test(next))) {
        out.values.push([key, true]);
        continue;
      }
      if (next === undefined) throw new ConfigError(key, "flag", `${name} needs a value`);
      value = next;
      i++;
    }
    out.values.push([key, value]);
  }
  return out;
}

function readYaml(path: string, readFile: LoadConfigInput["readFile"]): Array<[ConfigKey, unknown]> {
  if (!readFile) throw new ConfigError("", "file", `cannot read ${path}: no file reader given`);
  let doc: unknown;
  try {
    doc = parseYaml(readFile(path));
  } catch (e) {
    throw new ConfigError("", "file", `cannot load config file ${path}: ${(e as Error).message}`);
  }
  if (doc === null || doc === undefined) return [];
  if (typeof doc !== "object" || Array.isArray(doc)) throw new ConfigError("", "file", `config file ${path} must be a YAML mapping of field: value`);
  const out: Array<[ConfigKey, unknown]> = [];
  for (const [k, v] of Object.entries(doc as Record<string, unknown>)) {
    if (!(k in CONFIG_FIELDS)) throw new ConfigError(k, "file", `unknown field ${k} in config file ${path} (see --help)`);
    out.push([k as ConfigKey, v]);
  }
  return out;
}

/** Turns a raw value (string from env/flags, any YAML value) into the field's type and validates it. */
function coerce(key: ConfigKey, spec: FieldSpec, raw: unknown, source: ConfigSource, where: string): unknown {
  let value = raw;
  if (typeof raw === "string") {
    const s = raw.trim();
    if (spec.kind === "int" || spec.kind === "number") value = s === "" ? NaN : Number(s);
    else if (spec.kind === "boolean") value = /^(true|1|yes)$/i.test(s) ? true : /^(false|0|no)$/i.test(s) ? false : raw;
    else if (spec.kind === "peers") {
      const twice = repeatedPeerId(s);
      if (twice !== undefined) throw new ConfigError(key, source, `invalid ${key} from ${source} (${where}): ${JSON.stringify(raw)}: member id ${twice} is listed twice (each member once: id=url)`);
      value = parsePeers(s);
    }
  }
  const r = spec.schema.safeParse(value);
  if (!r.success) {
    const why = r.error.issues.map((i) => (i.path.length ? `${i.path.join(".")}: ` : "") + i.message).join("; ");
    throw new ConfigError(key, source, `invalid ${key} from ${source} (${where}): ${JSON.stringify(raw)}: ${why}`);
  }
  return r.data;
}

/** The first member id that `id=url,id=url` names twice (the second would silently replace the first), if any. */
function repeatedPeerId(s: string): string | undefined {
  const seen = new Set<string>();
  for (const part of s === "" ? [] : s.split(",")) {
    const p = part.trim();
    const eq = p.indexOf("=");
    const id = (eq < 0 ? p : p.slice(0, eq)).trim();
    if (seen.has(id)) return id;
    seen.add(id);
  }
  return undefined;
}

/** Parses `id=url,id=url` (spaces allowed); an entry without `=` is kept as an invalid key so the schema reports it. */
function parsePeers(s: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (s === "") return out;
  for (const part of s.split(",")) {
    const p = part.trim();
    const eq = p.indexOf("=");
    if (eq < 0) out[p] = "";
    else out[p.slice(0, eq).trim()] = p.slice(eq + 1).trim();
  }
  return out;
}

/** The `--help` text: every option with its flag, environment variable, default and unit, generated from the schema. */
export function configHelp(): string {
  const lines = [
    "usage: edgekv [--config file.yaml] [--flag value]...",
    "Sources, later overriding earlier: defaults, YAML file (camelCase keys), environment, flags.",
    "",
  ];
  for (const key of KEYS) {
    const f = CONFIG_FIELDS[key];
    const d = f.default === undefined ? "(derived)" : typeof f.default === "object" ? JSON.stringify(f.default) : String(f.default);
    const unit = f.unit ? ` [${f.unit}]` : "";
    lines.push(`  ${flagName(key)} <${f.kind}>${unit}  default ${d}`);
    lines.push(`      ${f.help}. env ${envName(key)}, file key ${key}`);
  }
  return lines.join("\n") + "\n";
}
