/**
 * Property test: random sequences of put / deleteRange / txn / lease / compact requests, applied in random
 * batches to the SQL state machine and one by one to the in-memory model (kv-model.ts); every result,
 * error code and event list must match, and so must range reads at random past revisions and watch
 * history from random revisions. Nested txns and client sessions (with retries) are part of the mix. Seeded by fast-check; a failure prints the seed and the shrunk sequence.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { openTestDb } from "../helpers/sql.ts";
import { KvStateMachine } from "../../src/kv/state-machine.ts";
import type { Compare, KvRequest, RequestOp } from "../../src/kv/types.ts";
import type { Entry } from "../../src/raft/types.ts";
import { KvModel } from "./kv-model.ts";
import { decodeTest, encodeTest } from "./kv-helpers.ts";

const ALL = new Uint8Array([0]);
const key = fc.constantFrom("a", "ab", "b", "ba", "c", "\u00ff").map((x) => new Uint8Array(Array.from(x, (ch) => ch.charCodeAt(0))));
const rangeEnd = fc.option(fc.oneof(key, fc.constant(ALL)), { nil: undefined });
const value = fc.constantFrom("", "x", "y", "zz").map((x) => new Uint8Array(Array.from(x, (ch) => ch.charCodeAt(0))));
const leaseId = fc.integer({ min: 0, max: 3 });

const put = fc.record({ op: fc.constant("put" as const), key, value, lease: leaseId, prevKv: fc.boolean() });
const del = fc.record({ op: fc.constant("deleteRange" as const), key, rangeEnd, prevKv: fc.boolean() });
const rangeOp = fc.record({
  op: fc.constant("range" as const),
  key,
  rangeEnd,
  limit: fc.integer({ min: 0, max: 3 }),
  keysOnly: fc.boolean(),
  revision: fc.integer({ min: 0, max: 10 }),
});
const compare: fc.Arbitrary<Compare> = fc.oneof(
  fc.record({ key, rangeEnd, target: fc.constant("value" as const), result: fc.constantFrom("=", "!=", "<", ">" as const), value }),
  fc.record({
    key,
    rangeEnd,
    target: fc.constantFrom("version", "createRevision", "modRevision", "lease" as const),
    result: fc.constantFrom("=", "!=", "<", ">" as const),
    value: fc.integer({ min: 0, max: 6 }),
  }),
) as fc.Arbitrary<Compare>;
const innerBranch = fc.array(fc.oneof(put, del, rangeOp) as fc.Arbitrary<RequestOp>, { maxLength: 2 });
const innerTxn = fc.record({ op: fc.constant("txn" as const), compare: fc.array(compare, { maxLength: 1 }), success: innerBranch, failure: innerBranch });
const branch = fc.array(
  fc.oneof({ weight: 3, arbitrary: put }, { weight: 2, arbitrary: del }, { weight: 2, arbitrary: rangeOp }, { weight: 1, arbitrary: innerTxn }) as fc.Arbitrary<RequestOp>,
  { maxLength: 3 },
);
const txn = fc.record({ op: fc.constant("txn" as const), compare: fc.array(compare, { maxLength: 2 }), success: branch, failure: branch });
const request: fc.Arbitrary<KvRequest> = fc.oneof(
  { weight: 5, arbitrary: put },
  { weight: 2, arbitrary: del },
  { weight: 3, arbitrary: txn },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("leaseGrant" as const), id: fc.integer({ min: 1, max: 3 }), ttlSeconds: fc.constant(10) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("leaseRevoke" as const), id: fc.integer({ min: 1, max: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("leaseExpire" as const), ids: fc.array(fc.integer({ min: 1, max: 3 }), { maxLength: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("compact" as const), revision: fc.integer({ min: 0, max: 25 }) }) },
) as fc.Arbitrary<KvRequest>;

/** A step: a batch of requests to apply, then a probe read and a probe watch. */
const step = fc.record({
  batch: fc.array(fc.record({ request, client: fc.constantFrom(undefined, "c1", "c2"), retry: fc.boolean() }), { minLength: 1, maxLength: 4 }),
  probe: fc.record({ key, rangeEnd, back: fc.integer({ min: 0, max: 8 }), limit: fc.integer({ min: 0, max: 3 }), countOnly: fc.boolean() }),
});

describe("kv state machine vs in-memory model", () => {
  it("agrees on every result, error, event, historical read and watch history", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 12 }), async (steps) => {
        const driver = await openTestDb(":memory:");
        try {
          const sm = new KvStateMachine(driver, { decode: decodeTest });
          const model = new KvModel();
          let index = 1;
          const lastSeq = new Map<string, number>();
          const outcomes = new Map<string, { sequence: number; outcome: { result?: unknown; error?: { code: string; compactRevision?: number } } }>();
          for (const { batch, probe } of steps) {
            // Sessions: a retry repeats the client's last sequence (and must not apply again), else the next one.
            const cmds = batch.map(({ request, client, retry }) => {
              if (client === undefined) return { request };
              const last = lastSeq.get(client) ?? 0;
              const sequence = retry && last > 0 ? last : last + 1;
              lastSeq.set(client, sequence);
              return { request, session: { clientId: client, sequence } };
            });
            const entries: Entry[] = cmds.map((cmd) => ({ index: index++, term: 1, type: "normal", data: encodeTest(cmd) }));
            const got = sm.applyEntries(entries);
            cmds.forEach((cmd, i) => {
              const req = cmd.request;
              const stored = cmd.session ? outcomes.get(cmd.session.clientId) : undefined;
              const dup = stored !== undefined && cmd.session !== undefined && stored.sequence === cmd.session.sequence;
              const want = dup ? { ...stored.outcome, events: [] } : model.apply(req);
              if (cmd.session && !dup) outcomes.set(cmd.session.clientId, { sequence: cmd.session.sequence, outcome: { result: want.result, error: want.error } });
              assert.equal(got[i].error?.code, want.error?.code, `error of ${JSON.stringify(req.op)}`);
              assert.equal(got[i].error?.compactRevision, want.error?.compactRevision);
              assert.deepEqual(got[i].result, want.result);
              assert.deepEqual(got[i].events, want.events);
            });
            assert.equal(sm.revision(), model.revision);
            assert.equal(sm.compactRevision(), model.compactRevision);
            const req = { key: probe.key, rangeEnd: probe.rangeEnd, limit: probe.limit, countOnly: probe.countOnly, revision: Math.max(0, model.revision - probe.back) };
            const outcome = (f: () => unknown) => {
              try {
                return f();
              } catch (e) {
                return { code: (e as { code?: string }).code, compactRevision: (e as { compactRevision?: number }).compactRevision };
              }
            };
            assert.deepEqual(outcome(() => sm.range(req)), outcome(() => model.read(req)));
            const from = Math.max(0, model.revision - probe.back);
            const all = outcome(() => {
              const events = [];
              let next = from;
              for (let i = 0; i < 100; i++) {
                const page = sm.eventsSince(next, probe.key, probe.rangeEnd, 2);
                events.push(...page.events);
                if (page.nextRevision > sm.revision()) break;
                next = page.nextRevision;
              }
              return events;
            });
            assert.deepEqual(all, outcome(() => model.eventsSince(from, probe.key, probe.rangeEnd)));
          }
          assert.equal(sm.appliedIndex(), index - 1);
        } finally {
          driver.close();
        }
      }),
      { numRuns: 120 },
    );
  });
});
