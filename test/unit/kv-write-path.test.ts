/**
 * The state machine's write path does the least SQL per put that keeps its guarantees (issue #6): the
 * store revision is read and written once per applied batch, a plain put runs no savepoint, keys without a
 * lease stay out of the lease index — and the results are exactly those of applying one entry at a time.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { openTestDb } from "../helpers/sql.ts";
import { KvStateMachine } from "../../src/kv/state-machine.ts";
import { logTailEntriesFor } from "../../src/kv/snapshot.ts";
import type { SqlDriver, SqlStatement, SqlValue } from "../../src/kv/sql-driver.ts";
import type { KvRequest } from "../../src/kv/types.ts";
import type { Entry } from "../../src/raft/types.ts";
import { Harness, b, decodeTest, encodeTest } from "./kv-helpers.ts";

/** A driver that counts how often each SQL text runs (prepared `run` and `exec`). */
function counting(inner: SqlDriver): { driver: SqlDriver; runs: Map<string, number> } {
  const runs = new Map<string, number>();
  const bump = (sql: string) => runs.set(sql, (runs.get(sql) ?? 0) + 1);
  const driver: SqlDriver = {
    path: inner.path,
    exec(sql: string) {
      bump(sql);
      inner.exec(sql);
    },
    prepare(sql: string): SqlStatement {
      const st = inner.prepare(sql);
      return {
        run: (...p: SqlValue[]) => (bump(sql), st.run(...p)),
        get: (...p: SqlValue[]) => st.get(...p),
        all: (...p: SqlValue[]) => st.all(...p),
      };
    },
    transaction: (fn) => inner.transaction(fn),
    close: () => inner.close(),
  };
  return { driver, runs };
}

function entries(start: number, requests: KvRequest[]): Entry[] {
  return requests.map((request, i) => ({ index: start + i, term: 1, type: "normal" as const, data: encodeTest({ request }) }));
}

const puts = (n: number): KvRequest[] => Array.from({ length: n }, (_, i) => ({ op: "put" as const, key: b(`k${i % 7}`), value: b(`v${i}`) }));

describe("kv write path: SQL per applied put", () => {
  it("a batch of 20 puts writes kv_meta three times (applied index, term, revision), not once per put", async () => {
    const { driver, runs } = counting(await openTestDb());
    const sm = new KvStateMachine(driver, { decode: decodeTest });
    runs.clear();
    const out = sm.applyEntries(entries(1, puts(20)));
    assert.equal(out.length, 20);
    const metaWrites = [...runs].filter(([sql]) => sql.startsWith("INSERT INTO kv_meta")).reduce((n, [, c]) => n + c, 0);
    assert.equal(metaWrites, 3);
    assert.equal(sm.revision(), 20);
    assert.deepEqual(out.map((o) => (o.result as { revision: number }).revision), Array.from({ length: 20 }, (_, i) => i + 1));
    driver.close();
  });

  it("a plain put runs no savepoint; a txn still runs one", async () => {
    const { driver, runs } = counting(await openTestDb());
    const sm = new KvStateMachine(driver, { decode: decodeTest });
    runs.clear();
    sm.applyEntries(entries(1, puts(5)));
    assert.equal([...runs.keys()].filter((sql) => sql.includes("SAVEPOINT")).length, 0);
    sm.applyEntries(entries(6, [{ op: "txn", compare: [], success: [{ op: "put", key: b("t"), value: b("1") }], failure: [] }]));
    assert.equal(runs.get("SAVEPOINT kv_request"), 1);
    driver.close();
  });

  it("a mixed batch (puts, a txn failing after a write, a delete, a put on an unknown lease) gives the results and state of one-at-a-time apply", async () => {
    const reqs: KvRequest[] = [
      { op: "put", key: b("a"), value: b("1") },
      { op: "put", key: b("b"), value: b("1") },
      // The txn's first put writes, its second fails at apply (unknown lease): the savepoint undoes the first.
      { op: "txn", compare: [], success: [{ op: "put", key: b("x"), value: b("1") }, { op: "put", key: b("y"), value: b("1"), lease: 99 }], failure: [] },
      { op: "put", key: b("c"), value: b("1"), lease: 99 },
      { op: "deleteRange", key: b("a") },
      { op: "put", key: b("b"), value: b("2") },
    ];
    const batched = await Harness.open();
    const outB = batched.sm.applyEntries(reqs.map((r) => batched.entry({ request: r })));
    const single = await Harness.open();
    const outS = reqs.map((r) => single.apply(r));
    const view = (o: (typeof outB)[number]) => ({ result: o.result, error: o.error?.code, events: o.events.length });
    assert.deepEqual(outB.map(view), outS.map(view));
    assert.deepEqual(outB.map((o) => o.error?.code), [undefined, undefined, "lease_not_found", "lease_not_found", undefined, undefined]);
    for (const h of [batched, single]) {
      assert.equal(h.sm.revision(), 4);
      const all = h.sm.range({ key: b("\0"), rangeEnd: b("\0") });
      assert.deepEqual(all.kvs.map((kv) => [new TextDecoder().decode(kv.key), kv.modRevision, kv.version]), [["b", 4, 2]]);
      assert.equal(h.sm.eventsSince(1, b("\0"), b("\0"), 100).events.length, 4);
    }
    batched.close();
    single.close();
  });
});

describe("kv write path: lease index", () => {
  it("keys without a lease stay out of the lease index; keys of a lease are still found", async () => {
    const h = await Harness.open();
    h.ok({ op: "leaseGrant", id: 7, ttlSeconds: 60 });
    h.ok({ op: "put", key: b("plain"), value: b("1") });
    h.ok({ op: "put", key: b("leased"), value: b("1"), lease: 7 });
    const n = h.driver.prepare("SELECT COUNT(*) AS n FROM kv_keys INDEXED BY kv_keys_by_live_lease WHERE lease != 0").get()?.n;
    assert.equal(n, 1);
    assert.deepEqual(h.sm.leaseInfo(7, true).keys?.map((k) => new TextDecoder().decode(k)), ["leased"]);
    const plan = h.driver.prepare("EXPLAIN QUERY PLAN SELECT key FROM kv_keys WHERE lease = ? AND lease != 0 ORDER BY key").all(7);
    assert.match(String(plan.map((r) => r.detail).join(" ")), /kv_keys_by_live_lease/);
    h.close();
  });

  it("opening a database with the earlier full lease index drops it", async () => {
    const driver = await openTestDb();
    new KvStateMachine(driver, { decode: decodeTest });
    driver.exec("CREATE INDEX kv_keys_by_lease ON kv_keys (lease)");
    new KvStateMachine(driver, { decode: decodeTest });
    const names = driver.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'kv_keys' AND name LIKE 'kv_keys_by%'").all().map((r) => r.name);
    assert.deepEqual(names, ["kv_keys_by_live_lease"]);
    driver.close();
  });
});

describe("snapshot log tail", () => {
  it("keeps min(snapshotEntries, 5000) entries behind a snapshot (etcd's SnapshotCatchUpEntries)", () => {
    assert.deepEqual([logTailEntriesFor(40), logTailEntriesFor(5000), logTailEntriesFor(100_000)], [40, 5000, 5000]);
  });
});
