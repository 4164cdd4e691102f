/**
 * The deterministic simulator run in process: a few dozen seeds (3 and 5 nodes) must keep every invariant
 * and stay linearizable, a seed must replay to the same trace, and each deliberately wrong rule (`--bug`)
 * must be caught within its seed budget (which proves the checks can fail). Asynchronous persist (the
 * node's fsync off the event loop) runs on its own seeds too and catches a core whose advance() ignores
 * that pending entries were replaced; pipelined persist (several Readys written before the oldest is
 * durable) runs on its own seeds and catches a core that does not re-hand replaced entries. Longer runs: `npm run sim`.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { RaftBug } from "../../src/raft/types.ts";
import { RaftNode } from "../../src/raft/raw-node.ts";
import type { CoreFactory } from "./sim-node.ts";
import type { InvariantName } from "./checks.ts";
import type { KvOperation } from "../lin/kv-model.ts";
import { resolveUnknowns, runSimulation } from "./sim.ts";

/** Short runs keep the file well under a minute per runtime; the CLI runs full-length seeds. */
const SAFETY_TICKS = 700;

function violationsOf(seeds: number[], nodes: number, persist?: "sync" | "async"): string[] {
  const out: string[] = [];
  for (const seed of seeds) {
    const r = runSimulation({ seed, nodes, ticks: SAFETY_TICKS, persist });
    assert.ok(r.opsCompleted > 0, `seed ${seed}: no client operation completed`);
    if (r.violation) out.push(`seed ${seed} (${nodes} nodes): ${r.violation.invariant}: ${r.violation.detail.slice(0, 300)}`);
  }
  return out;
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe("simulator: safety and liveness on healthy seeds", () => {
  it("seeds 1..16 with 3 nodes keep every invariant and are linearizable", () => {
    assert.deepEqual(violationsOf(range(1, 16), 3), []);
  });

  it("seeds 1..10 with 5 nodes keep every invariant and are linearizable", () => {
    assert.deepEqual(violationsOf(range(1, 10), 5), []);
  });
});

describe("simulator: asynchronous persist (fsync completes while the node keeps stepping)", () => {
  it("seeds 1..6 with 3 nodes, every node async, keep every invariant and are linearizable", () => {
    assert.deepEqual(violationsOf(range(1, 6), 3, "async"), []);
  });

  it("messages really reach a node while its fsync is in flight, and crashes hit fsyncs in flight", () => {
    const r = runSimulation({ seed: 2, persist: "async", trace: true, ticks: SAFETY_TICKS });
    assert.equal(r.violation, undefined);
    assert.ok(r.trace.some((l) => l.includes("persist: async")), "the mix says async");
    assert.ok(r.stats.persistsCompleted > 1000, `${r.stats.persistsCompleted} fsyncs completed`);
    assert.ok(r.stats.crashesMidPersist > 0, "some crash hit an fsync in flight");
    // Count messages delivered to a node between its "fsync in flight" and its "fsync done" (or crash).
    const pending = new Set<string>();
    let steppedWhilePending = 0;
    for (const line of r.trace) {
      const inflight = / (n\d+) fsync in flight/.exec(line);
      const done = / (n\d+) (fsync done|crashes)/.exec(line);
      const msg = / n\d+->(n\d+) /.exec(line);
      if (inflight) pending.add(inflight[1]);
      else if (done) pending.delete(done[1]);
      else if (msg && pending.has(msg[1])) steppedWhilePending++;
    }
    assert.ok(steppedWhilePending > 1000, `${steppedWhilePending} messages stepped during an fsync`);
    const sync = runSimulation({ seed: 2, persist: "sync", ticks: SAFETY_TICKS });
    assert.equal(sync.stats.persistsCompleted, 0);
  });

  it("catches a core whose advance() marks entries stable without checking their term (etcd raft's stableTo rule)", () => {
    // The wrong rule: stableTo(index, term) takes whatever entry the log now holds at index as persisted,
    // so entries a newer leader wrote over the pending ones during the fsync are never written.
    const ignoreTerm: CoreFactory = (config, storage, rng) => {
      const n = new RaftNode(config, storage, rng);
      const log = n.log;
      const stableTo = log.stableTo.bind(log);
      log.stableTo = (index: number) => stableTo(index, log.termOrNone(index));
      return n;
    };
    // Seed 58: the first of 1..60 that meets the case since the leader also sends during a pending fsync
    // (takeSendNow; it was seed 14 before).
    const r = runSimulation({ seed: 58, persist: "async", readysInFlight: 1, coreFactory: ignoreTerm });
    assert.equal(r.violation?.invariant, "committed-entry-changed", `got ${r.violation?.invariant}: ${r.violation?.detail}`);
    // Synchronous persist never steps between ready() and advance(): the wrong rule is invisible there.
    assert.equal(runSimulation({ seed: 58, persist: "sync", ticks: SAFETY_TICKS, coreFactory: ignoreTerm }).violation, undefined);
  });
});

describe("simulator: pipelined persist (Readys written while earlier fsyncs are in flight)", () => {
  it("seeds 1..6 with 3 nodes at 4 Readys in flight keep every invariant, and the pipeline is really used", () => {
    let pipelined = 0;
    let crashesPipelined = 0;
    const violations: string[] = [];
    for (const seed of range(1, 6)) {
      const r = runSimulation({ seed, nodes: 3, ticks: SAFETY_TICKS, persist: "async", readysInFlight: 4 });
      assert.ok(r.opsCompleted > 0, `seed ${seed}: no client operation completed`);
      if (r.violation) violations.push(`seed ${seed}: ${r.violation.invariant}: ${r.violation.detail.slice(0, 300)}`);
      pipelined += r.stats.readysPipelined;
      crashesPipelined += r.stats.crashesPipelined;
    }
    assert.deepEqual(violations, []);
    assert.ok(pipelined > 1000, `${pipelined} Readys written behind an fsync in flight`);
    assert.ok(crashesPipelined > 0, "some crash hit two or more Readys in flight");
  });

  it("catches a core that does not hand out again the entries a newer leader wrote over handed-out ones", () => {
    // The wrong rule: RaftLog.append leaves handedTo where it was when it replaces handed-out entries,
    // so the next Ready omits the new entries and storage keeps the replaced ones (etcd raft lowers
    // unstable.offsetInProgress for the same reason).
    const keepHanded: CoreFactory = (config, storage, rng) => {
      const n = new RaftNode(config, storage, rng);
      const log = n.log;
      const append = log.append.bind(log);
      log.append = (entries) => {
        const handedTo = log.handedTo;
        append(entries);
        log.handedTo = handedTo;
      };
      return n;
    };
    const r = runSimulation({ seed: 2, nodes: 3, ticks: SAFETY_TICKS, persist: "async", readysInFlight: 4, coreFactory: keepHanded });
    assert.equal(r.violation?.invariant, "committed-entry-changed", `got ${r.violation?.invariant}: ${r.violation?.detail}`);
    assert.equal(runSimulation({ seed: 2, nodes: 3, ticks: SAFETY_TICKS, persist: "async", readysInFlight: 4 }).violation, undefined);
  });
});

describe("simulator: determinism", () => {
  it("the same seed gives the same trace, event for event", () => {
    const a = runSimulation({ seed: 7, ticks: 300, trace: true });
    const b = runSimulation({ seed: 7, ticks: 300, trace: true });
    assert.ok(a.trace.length > 500, `trace too short to mean anything: ${a.trace.length} lines`);
    assert.deepEqual(a.trace, b.trace);
  });

  it("the same seed with asynchronous persist gives the same trace, fsync for fsync", () => {
    const a = runSimulation({ seed: 5, ticks: 300, trace: true, persist: "async" });
    const b = runSimulation({ seed: 5, ticks: 300, trace: true, persist: "async" });
    assert.ok(a.trace.filter((l) => l.includes("fsync done")).length > 100, "fsyncs complete in the trace");
    assert.deepEqual(a.trace, b.trace);
  });

  it("different seeds give different runs", () => {
    const a = runSimulation({ seed: 1, ticks: 200, trace: true });
    const b = runSimulation({ seed: 2, ticks: 200, trace: true });
    assert.notDeepEqual(a.trace, b.trace);
  });
});

describe("simulator: unknown outcomes", () => {
  it("resolves an unknown write to its first apply, and drops one that never applied", () => {
    const applied: KvOperation = { clientId: 1, input: { kind: "cas", key: "a", expected: null, value: "x" }, call: 5 };
    const never: KvOperation = { clientId: 2, input: { kind: "put", key: "a", value: "y" }, call: 6 };
    const done: KvOperation = { clientId: 3, input: { kind: "get", key: "a" }, call: 7, ret: 9, output: { value: "x" } };
    const ids = new Map([
      [applied, "1.1.2"],
      [never, "2.1.1"],
    ]);
    const out = resolveUnknowns([applied, never, done], ids, new Map([["1.1.2", { at: 8, ok: true }]]));
    assert.deepEqual(out, [{ ...applied, ret: 8, output: { ok: true } }, done]);
  });
});

/** Runs seeds 1.. until one breaks a safety invariant (liveness failures do not count); bounded by `budget`. */
function firstCaught(bug: RaftBug, budget: number, ticks: number, persist?: "sync" | "async"): { seed: number; invariant: InvariantName } | undefined {
  for (let seed = 1; seed <= budget; seed++) {
    const r = runSimulation({ seed, bug, ticks, persist });
    if (r.violation && r.violation.invariant !== "liveness") return { seed, invariant: r.violation.invariant };
  }
  return undefined;
}

describe("simulator: deliberately wrong rules are caught", () => {
  it("commit-prior-term (Raft paper figure 8) breaks leader completeness or state machine safety", () => {
    // Rare at this length (seed 29 with sync persist; none of 1..40 with async since the leader also
    // sends during a pending fsync): the persist mode is fixed so its per-seed draw does not decide
    // whether the budget suffices. The rule broken is the core's commit rule, whatever the persist mode.
    const caught = firstCaught("commit-prior-term", 40, 1500, "sync");
    assert.ok(caught, "commit-prior-term not caught within 40 seeds");
    assert.ok(
      ["leader-completeness", "state-machine-safety", "committed-entry-changed", "log-matching", "linearizability"].includes(caught.invariant),
      `unexpected invariant ${caught.invariant}`,
    );
  });

  it("forget-vote (vote not durable) gives two leaders in one term", () => {
    const caught = firstCaught("forget-vote", 40, 800);
    assert.ok(caught, "forget-vote not caught within 40 seeds");
    assert.equal(caught.invariant, "election-safety");
  });

  it("stale-read (reads served without confirming leadership) is not linearizable", () => {
    const caught = firstCaught("stale-read", 10, 600);
    assert.ok(caught, "stale-read not caught within 10 seeds");
    assert.equal(caught.invariant, "linearizability");
  });
});
