/**
 * Randomized safety properties of the core over the test network (fast-check drives the seed): messages
 * are dropped, duplicated and reordered, nodes are partitioned and crash-restarted from durable storage.
 * Checked after every step: State Machine Safety (every node applies the same entry at an index, Raft
 * paper §5.4.3), Election Safety (one leader per term), no acknowledged write lost, and ReadIndex returns
 * an index >= every write acknowledged before the read was asked (linearizable reads, thesis §6.4).
 * The full fault simulator lives in test/sim/; this is the core's own quick check.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { RaftNet, bytes } from "../helpers/raft-net.ts";
import { createRng, type Message, type RaftBug } from "../../src/raft/index.ts";

interface Outcome {
  violations: string[];
  acked: number;
  reads: number;
  confChanges: number;
  compactions: number;
}

/** One random run; `readEveryStep` asks every node for a read at every step (to hunt stale reads). */
function run(seed: number, steps: number, bugs: RaftBug[] = [], readEveryStep = false): Outcome {
  const rng = createRng(seed);
  const ids = ["n1", "n2", "n3", "n4", "n5"].slice(0, 3 + rng.nextInt(3));
  // "s1" starts outside the cluster with an empty log; membership ops may add, promote and remove nodes.
  const net = new RaftNet(ids, { bugs: new Set(bugs) }, { seed, extra: ["s1"] });
  const all = [...ids, "s1"];
  const violations: string[] = [];
  const appliedAt = new Map<number, string>();
  const leaderOf = new Map<number, string>();
  const seen = new Map<string, number>();
  const acked: Array<{ index: number; key: string }> = [];
  const pending = new Map<string, { index: number; term: number; key: string }>();
  const readFloor = new Map<string, number>();
  let maxAcked = 0;
  let reads = 0;
  let proposals = 0;
  let confChanges = 0;
  let compactions = 0;

  const observe = () => {
    for (const m of net.members.values()) {
      const st = m.node.status();
      if (st.role === "leader") {
        const prev = leaderOf.get(st.term);
        if (prev && prev !== m.id) violations.push(`two leaders in term ${st.term}: ${prev}, ${m.id}`);
        leaderOf.set(st.term, m.id);
      }
      for (let i = seen.get(m.id) ?? 0; i < m.readies.length; i++) {
        const rd = m.readies[i]!;
        for (const e of rd.committedEntries) {
          const key = `${e.term}:${new TextDecoder().decode(e.data)}`;
          const prev = appliedAt.get(e.index);
          if (prev === undefined) appliedAt.set(e.index, key);
          else if (prev !== key) violations.push(`index ${e.index}: ${m.id} applied ${key}, another applied ${prev}`);
          for (const [id, p] of pending) {
            if (p.index === e.index) {
              if (p.term === e.term) {
                acked.push({ index: e.index, key: p.key });
                maxAcked = Math.max(maxAcked, e.index);
              }
              pending.delete(id);
            }
          }
        }
        for (const r of rd.readStates) {
          reads++;
          const floor = readFloor.get(`${m.id}/${r.requestId}`) ?? 0;
          if (r.index < floor) violations.push(`read ${r.requestId} at ${r.index} < acknowledged ${floor}`);
        }
      }
      seen.set(m.id, m.readies.length);
    }
  };

  const pick = <T>(xs: T[]): T => xs[rng.nextInt(xs.length)]!;
  for (let step = 0; step < steps && violations.length === 0; step++) {
    const roll = rng.nextInt(100);
    if (roll < 45) {
      for (const m of net.members.values()) m.node.tick();
    } else if (roll < 70) {
      for (const id of net.leaderIds()) {
        const key = `v${proposals++}`;
        try {
          const p = net.node(id).propose(bytes(key));
          pending.set(key, { ...p, key: `${p.term}:${key}` });
        } catch {
          // refused (transfer or membership in flight): fine
        }
      }
    } else if (roll < 80) {
      const id = pick(all);
      const requestId = `r${step}`;
      try {
        net.node(id).readIndex(requestId);
        readFloor.set(`${id}/${requestId}`, maxAcked);
      } catch {
        // no leader known
      }
    } else if (roll < 86) {
      net.isolate(pick(all));
    } else if (roll < 93) {
      net.heal();
    } else if (roll < 96) {
      const id = pick(all);
      observe();
      net.restart(id);
      seen.set(id, 0);
    } else if (roll < 97) {
      // Compaction: snapshot at the applied index with the membership as of that index, keep no tail.
      const m = net.get(pick(all));
      const at = m.appliedIndex;
      if (at >= m.storage.firstIndex()) {
        let conf = m.storage.initialState().confState;
        for (const e of m.storage.entries(m.storage.firstIndex(), at + 1, Infinity)) if (e.confState) conf = e.confState;
        m.storage.createSnapshot(at, conf, bytes(`snap@${at}`));
        m.storage.compact(at);
        compactions++;
      }
    } else if (roll < 98) {
      const l = net.leaderIds()[0];
      if (l) {
        try {
          net.node(l).transferLeader(pick(all));
        } catch {
          // not a voter or not leader
        }
      }
    } else {
      const l = net.leaderIds()[0];
      if (l) {
        const cs = net.node(l).status().confState;
        const outside = all.filter((id) => !cs.voters.includes(id) && !cs.learners.includes(id));
        const steps =
          cs.learners.length > 0 ? [{ type: "promote" as const, nodeId: cs.learners[0]! }]
          : outside.length > 0 && rng.nextInt(2) === 0 ? [{ type: "addLearner" as const, nodeId: pick(outside) }]
          : cs.voters.length > 3 ? [{ type: "remove" as const, nodeId: pick(cs.voters) }]
          : [];
        if (steps.length > 0) {
          try {
            net.node(l).proposeConfChange({ steps });
            confChanges++;
          } catch {
            // one change in flight, or the joint configuration is being left
          }
        }
      }
    }
    if (readEveryStep) {
      for (const id of all) {
        try {
          net.node(id).readIndex(`e${step}${id}`);
          readFloor.set(`${id}/e${step}${id}`, maxAcked);
        } catch {
          // no leader known
        }
      }
    }
    net.handleAllReady();
    observe();
    // The network: drop 10%, duplicate 5%, shuffle.
    const q: Message[] = [];
    for (const m of net.queue) {
      const r = rng.nextInt(100);
      if (r < 10) continue;
      q.push(m);
      if (r >= 95) q.push(m);
    }
    for (let i = q.length - 1; i > 0; i--) {
      const j = rng.nextInt(i + 1);
      [q[i], q[j]] = [q[j]!, q[i]!];
    }
    net.queue = q;
    net.deliver();
  }
  // Heal and let it settle: every acknowledged write must be in the final log.
  if (violations.length === 0) {
    net.heal();
    for (let i = 0; i < 60; i++) {
      for (const m of net.members.values()) m.node.tick();
      net.stabilize(400);
      observe();
    }
    for (const a of acked) if (appliedAt.get(a.index) !== a.key) violations.push(`acknowledged write ${a.key} at ${a.index} lost`);
    const leaders = net.leaderIds();
    if (leaders.length !== 1) violations.push(`after healing: leaders ${leaders.join(",")}`);
  }
  return { violations, acked: acked.length, reads, confChanges, compactions };
}

describe("raft safety under random faults", () => {
  it("keeps State Machine Safety, Election Safety, acknowledged writes and linearizable reads", () => {
    let acked = 0;
    let reads = 0;
    let confChanges = 0;
    let compactions = 0;
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 31 - 1 }), (seed) => {
        const out = run(seed, 250, [], seed % 2 === 0);
        acked += out.acked;
        reads += out.reads;
        confChanges += out.confChanges;
        compactions += out.compactions;
        assert.deepEqual(out.violations, [], `seed ${seed}`);
      }),
      { numRuns: 25, seed: 42 },
    );
    assert.ok(acked > 100, `the runs did real work (${acked} acknowledged writes)`);
    assert.ok(reads > 20, `and served reads (${reads})`);
    assert.ok(confChanges > 5, `and changed membership (${confChanges})`);
    assert.ok(compactions > 5, `and compacted logs (${compactions})`);
  });

  it("the checker catches the stale-read bug on some seed (the property above can fail)", () => {
    let caught = "";
    for (let seed = 1; seed <= 60 && !caught; seed++) {
      const out = run(seed, 250, ["stale-read"], true);
      if (out.violations.some((v) => v.startsWith("read"))) caught = `seed ${seed}: ${out.violations[0]}`;
    }
    assert.ok(caught, "no seed exposed stale reads");
  });
});
