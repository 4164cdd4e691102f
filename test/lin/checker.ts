/**
 * A linearizability checker in the style of Wing & Gong (1993) with Lowe's memoisation (2017), as popularised
 * by Porcupine: a depth-first search over the order in which concurrent operations take effect, pruned by a
 * cache of (set of operations already linearized, model state) pairs that were already explored.
 *
 * The history is split by the model's `partition` (e.g. one sub-history per key, which is sound for
 * models whose operations touch one key: linearizability is local, Herlihy & Wing 1990 §3.3) and each part
 * is searched on its own. The search is bounded by `maxSteps` so a pathological history yields "unknown"
 * rather than a hang; callers that need a verdict must treat "unknown" as a failure.
 *
 * Pure TypeScript with no runtime imports, so the simulator, the unit tests and the nemesis harness (real
 * processes) can all use it.
 */

/**
 * A sequential specification. `S` is the state, `I` an operation's input and `O` its output.
 * `step(state, input, output)` says whether the operation, applied atomically to `state`, could have
 * produced `output`, and returns the state after it. `output` is `undefined` when the outcome is unknown
 * (the client never heard back): `step` must then accept and return the state the operation would leave
 * if it took effect (not taking effect at all is modelled by linearizing it after everything else).
 * `step` must not mutate `state`.
 */
export interface Model<S, I, O> {
  init(): S;
  step(state: S, input: I, output: O | undefined): [ok: boolean, next: S];
  /** A canonical string for a state; equal strings mean equal states (used by the memoisation cache). */
  key(state: S): string;
  /** Optional split into independent sub-histories (e.g. by key); the default keeps the history whole. */
  partition?(history: Operation<I, O>[]): Operation<I, O>[][];
  /**
   * Optional: a sub-history whose linearizability implies that of `partition`, tried first because it is
   * cheaper (e.g. without the unknown-outcome writes nobody observed: "never took effect" is always one of
   * their allowed fates). When it is not linearizable the whole partition is searched.
   */
  prune?(partition: Operation<I, O>[]): Operation<I, O>[];
  /** Optional human-readable rendering of one operation, for reports. */
  describe?(op: Operation<I, O>): string;
}

/**
 * One client operation. `call` and `ret` are times on one shared clock (any unit; the simulator uses a
 * global event sequence number so no two events tie). An operation whose outcome is unknown has no
 * `output` and no `ret`: it may have taken effect at any time after `call`, or never.
 * Two events at the same time count as concurrent.
 */
export interface Operation<I, O> {
  clientId: string | number;
  input: I;
  call: number;
  output?: O;
  ret?: number;
}

/** "ok": linearizable; "illegal": proven not linearizable; "unknown": the search hit `maxSteps`. */
export type CheckVerdict = "ok" | "illegal" | "unknown";

/** The checker's answer. On "illegal", `partition` is the failing sub-history (its operations in call order). */
export interface CheckResult<I, O> {
  verdict: CheckVerdict;
  /** Search steps used, summed over partitions. */
  steps: number;
  partitions: number;
  /** The sub-history that is illegal (or that ran out of steps). */
  partition?: Operation<I, O>[];
  /** The longest prefix of operations (of that partition) the search managed to linearize, in order. */
  longestLinearized?: Operation<I, O>[];
  /** A short explanation, e.g. listing the failing partition's operations. */
  message: string;
}

/** Options of {@link checkOperations}. */
export interface CheckOptions {
  /** Bound on search steps per partition (one step = one attempt to linearize or one backtrack). Default 1e6. */
  maxSteps?: number;
}

interface ListNode<I, O> {
  op: Operation<I, O> | undefined; // undefined for the head sentinel
  id: number;
  isCall: boolean;
  time: number;
  match: ListNode<I, O> | undefined; // call -> its return node
  prev: ListNode<I, O> | undefined;
  next: ListNode<I, O> | undefined;
}

/** Builds the doubly linked event list: events by time, calls before returns at equal times (= concurrent). */
function buildList<I, O>(ops: Operation<I, O>[]): ListNode<I, O> {
  type Ev = { time: number; isCall: boolean; id: number };
  const events: Ev[] = [];
  ops.forEach((op, id) => {
    events.push({ time: op.call, isCall: true, id });
    events.push({ time: op.ret === undefined ? Number.POSITIVE_INFINITY : op.ret, isCall: false, id });
  });
  events.sort((a, b) => {
    if (a.time !== b.time) return a.time < b.time ? -1 : 1;
    if (a.isCall !== b.isCall) return a.isCall ? -1 : 1;
    return a.id - b.id;
  });
  const head: ListNode<I, O> = { op: undefined, id: -1, isCall: false, time: -Infinity, match: undefined, prev: undefined, next: undefined };
  const returns = new Array<ListNode<I, O>>(ops.length);
  const calls = new Array<ListNode<I, O>>(ops.length);
  let tail = head;
  for (const ev of events) {
    const node: ListNode<I, O> = { op: ops[ev.id], id: ev.id, isCall: ev.isCall, time: ev.time, match: undefined, prev: tail, next: undefined };
    tail.next = node;
    tail = node;
    if (ev.isCall) calls[ev.id] = node;
    else returns[ev.id] = node;
  }
  for (let i = 0; i < ops.length; i++) calls[i].match = returns[i];
  return head;
}

/** Removes a call node and its return node from the list (the operation is now linearized). */
function lift<I, O>(call: ListNode<I, O>): void {
  call.prev!.next = call.next;
  if (call.next) call.next.prev = call.prev;
  const ret = call.match!;
  ret.prev!.next = ret.next;
  if (ret.next) ret.next.prev = ret.prev;
}

/** Undoes {@link lift}; must be called in exact reverse order of lifts. */
function unlift<I, O>(call: ListNode<I, O>): void {
  const ret = call.match!;
  ret.prev!.next = ret;
  if (ret.next) ret.next.prev = ret;
  call.prev!.next = call;
  if (call.next) call.next.prev = call;
}

/** A fixed-size bitset over operation ids with a cheap string key. */
class Bits {
  readonly words: Uint32Array;
  constructor(n: number) {
    this.words = new Uint32Array(Math.ceil(n / 32) || 1);
  }
  set(i: number): void {
    this.words[i >>> 5] |= 1 << (i & 31);
  }
  clear(i: number): void {
    this.words[i >>> 5] &= ~(1 << (i & 31));
  }
  key(): string {
    return Array.prototype.join.call(this.words, ",");
  }
}

interface PartResult<I, O> {
  verdict: CheckVerdict;
  steps: number;
  longest: Operation<I, O>[];
}

/** Searches one partition; see the file comment. */
function checkPartition<S, I, O>(model: Model<S, I, O>, ops: Operation<I, O>[], maxSteps: number): PartResult<I, O> {
  if (ops.length === 0) return { verdict: "ok", steps: 0, longest: [] };
  const head = buildList(ops);
  const linearized = new Bits(ops.length);
  const cache = new Set<string>();
  const stack: Array<{ node: ListNode<I, O>; state: S }> = [];
  let state = model.init();
  let entry = head.next;
  let steps = 0;
  let longest: Operation<I, O>[] = [];
  while (head.next !== undefined) {
    if (++steps > maxSteps) return { verdict: "unknown", steps, longest };
    if (entry === undefined) throw new Error("linearizability checker: fell off the event list (bug)");
    if (entry.isCall) {
      const [ok, next] = model.step(state, entry.op!.input, entry.op!.output);
      if (ok) {
        linearized.set(entry.id);
        const k = linearized.key() + "|" + model.key(next);
        if (!cache.has(k)) {
          cache.add(k);
          stack.push({ node: entry, state });
          if (stack.length > longest.length) longest = stack.map((s) => s.node.op!);
          state = next;
          lift(entry);
          entry = head.next;
          continue;
        }
        linearized.clear(entry.id);
      }
      entry = entry.next;
    } else {
      // A return whose call is not yet linearized: the operation must take effect before this point, so
      // every choice made so far is a dead end; undo the latest one and try its next alternative.
      const top = stack.pop();
      if (top === undefined) return { verdict: "illegal", steps, longest };
      state = top.state;
      linearized.clear(top.node.id);
      unlift(top.node);
      entry = top.node.next;
    }
  }
  return { verdict: "ok", steps, longest };
}

/**
 * Checks that `history` is linearizable with respect to `model`.
 * Returns "ok", "illegal" (with the failing partition) or "unknown" when `maxSteps` was exceeded in some
 * partition (and none was illegal). Throws only on malformed input (an operation whose `ret` < `call`).
 */
export function checkOperations<S, I, O>(model: Model<S, I, O>, history: Operation<I, O>[], options: CheckOptions = {}): CheckResult<I, O> {
  const maxSteps = options.maxSteps ?? 1_000_000;
  for (const op of history) {
    if (op.ret !== undefined && op.ret < op.call) throw new Error(`linearizability checker: operation returns (${op.ret}) before its call (${op.call})`);
    if ((op.ret === undefined) !== (op.output === undefined)) throw new Error("linearizability checker: an operation must have both output and ret, or neither");
  }
  const parts = model.partition ? model.partition(history) : [history];
  const describe = model.describe ?? ((op: Operation<I, O>) => JSON.stringify(op));
  let steps = 0;
  let unknown: { part: Operation<I, O>[]; longest: Operation<I, O>[] } | undefined;
  for (const part of parts) {
    if (model.prune) {
      const pruned = model.prune(part);
      if (pruned.length < part.length) {
        const quick = checkPartition(model, pruned, maxSteps);
        steps += quick.steps;
        if (quick.verdict === "ok") continue;
      }
    }
    const r = checkPartition(model, part, maxSteps);
    steps += r.steps;
    if (r.verdict === "illegal") {
      const sorted = [...part].sort((a, b) => a.call - b.call);
      return {
        verdict: "illegal",
        steps,
        partitions: parts.length,
        partition: sorted,
        longestLinearized: r.longest,
        message: `not linearizable; ${sorted.length} operations in the failing partition:\n` + sorted.map((op) => "  " + describe(op)).join("\n"),
      };
    }
    if (r.verdict === "unknown" && unknown === undefined) unknown = { part, longest: r.longest };
  }
  if (unknown) {
    return {
      verdict: "unknown",
      steps,
      partitions: parts.length,
      partition: unknown.part,
      longestLinearized: unknown.longest,
      message: `search gave up after ${maxSteps} steps in a partition of ${unknown.part.length} operations`,
    };
  }
  return { verdict: "ok", steps, partitions: parts.length, message: "linearizable" };
}
