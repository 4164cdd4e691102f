/**
 * The sequential specification of a key-value store of registers: put, get and compare-and-swap on string
 * keys, every key independent (so the history is partitioned by key). Used by the simulator and, with real
 * processes, by the nemesis harness.
 *
 * A missing key reads as `null`; `cas` with `expected: null` succeeds only when the key is missing
 * (etcd txn semantics for `version == 0`).
 */
import type { Model, Operation } from "./checker.ts";

/** One KV operation's input. */
export type KvInput =
  | { kind: "put"; key: string; value: string }
  | { kind: "get"; key: string }
  | { kind: "cas"; key: string; expected: string | null; value: string };

/** One KV operation's output: put -> {}, get -> {value}, cas -> {ok}. */
export type KvOutput = { value?: string | null; ok?: boolean };

/** A history entry of the KV model. */
export type KvOperation = Operation<KvInput, KvOutput>;

/** State of one key's register (the model is only ever run on one key's partition). */
type RegisterState = string | null;

/** The KV model: one register per key; see the file comment. */
export const kvModel: Model<RegisterState, KvInput, KvOutput> = {
  init: () => null,
  step(state, input, output) {
    switch (input.kind) {
      case "put":
        return [true, input.value];
      case "get":
        return [output === undefined || output.value === state, state];
      case "cas": {
        const matches = state === input.expected;
        if (output === undefined) return [true, matches ? input.value : state];
        if (output.ok === true) return [matches, matches ? input.value : state];
        return [!matches, state];
      }
    }
  },
  key: (state) => (state === null ? "\u0000null" : "v" + state),
  partition(history) {
    const byKey = new Map<string, KvOperation[]>();
    for (const op of history) {
      let list = byKey.get(op.input.key);
      if (!list) byKey.set(op.input.key, (list = []));
      list.push(op);
    }
    // Sorted keys so reports are the same on every run and runtime.
    return [...byKey.keys()].sort().map((k) => byKey.get(k)!);
  },
  prune(partition) {
    // Values some completed operation observed: read by a get, or matched by a successful CAS.
    const observed = new Set<string>();
    for (const op of partition) {
      if (op.output === undefined) continue;
      if (op.input.kind === "get" && typeof op.output.value === "string") observed.add(op.output.value);
      if (op.input.kind === "cas" && op.output.ok && op.input.expected !== null) observed.add(op.input.expected);
    }
    return partition.filter((op) => op.output !== undefined || op.input.kind === "get" || observed.has(op.input.value));
  },
  describe(op) {
    const i = op.input;
    const what =
      i.kind === "put" ? `put(${i.key}, ${i.value})` : i.kind === "get" ? `get(${i.key})` : `cas(${i.key}, ${JSON.stringify(i.expected)} -> ${i.value})`;
    const out =
      op.output === undefined ? "unknown" : i.kind === "get" ? JSON.stringify(op.output.value ?? null) : i.kind === "cas" ? String(op.output.ok) : "ok";
    return `client ${op.clientId}: ${what} = ${out}  [${op.call}, ${op.ret ?? "∞"}]`;
  },
};
