/**
 * Answer size limit (`maxResponseBytes`, src/kv/answer-size.ts) and the client-sent `x-edgekv-forwarded`
 * header, on a 2-node in-process cluster (real peer transport). A 48 MB txn answer held a leader's event
 * loop 10-13 s (docs/nemesis.md): a range, txn or prevKv delete whose answer is above the limit is now
 * refused with 413 `response_too_large` before anything is read, proposed or sent, on the leader and
 * through the follower alike; a txn whose reads grow past the limit before it applies (other writes, or
 * its own) is refused at apply against the cap carried in its entry, and applies nothing. A client's `x-edgekv-forwarded` header made a follower answer 421 instead of
 * forwarding; it now means nothing. Runs on Node, Bun and Deno.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { InProcessCluster } from "../helpers/inprocess-cluster.ts";

const LIMIT_BYTES = 64 * 1024;
const VALUE_BYTES = 10_000;
const KEYS = 10;

/** Status and parsed JSON body of a response. */
async function answer(res: Response): Promise<{ status: number; body: Record<string, unknown> }> {
  const text = await res.text();
  return { status: res.status, body: text === "" ? {} : (JSON.parse(text) as Record<string, unknown>) };
}

/** Asserts the 413 response_too_large error body: exactly code and message, the message naming the limit and `limit`. */
function assertTooLarge(a: { status: number; body: Record<string, unknown> }): void {
  assert.equal(a.status, 413, JSON.stringify(a.body));
  const error = a.body.error as { code: string; message: string };
  assert.deepEqual(Object.keys(a.body), ["error"]);
  assert.deepEqual(Object.keys(error).sort(), ["code", "message"]);
  assert.equal(error.code, "response_too_large");
  assert.match(error.message, new RegExp(`limit of ${LIMIT_BYTES} bytes`));
  assert.match(error.message, /set limit/);
}

describe(`answers above maxResponseBytes (${LIMIT_BYTES} bytes), 2 nodes in process`, () => {
  let c: InProcessCluster;
  let leader = "";
  let follower = "";
  before(async () => {
    c = await InProcessCluster.start({ nodes: 2, flags: ["--max-response-bytes", String(LIMIT_BYTES), "--max-value-bytes", String(LIMIT_BYTES / 2)] });
    leader = await c.leader(10_000);
    follower = leader === "n1" ? "n2" : "n1";
    // 10 keys of 10 KB: about 100 KB of answer for the whole prefix, 50 KB for 5 keys.
    for (let i = 0; i < KEYS; i++) {
      const put = await c.request(leader, "PUT", `/v1/kv/big/${i}`, new Uint8Array(VALUE_BYTES).fill(65 + i));
      assert.equal(put.status, 200, await put.text());
    }
  });
  after(async () => {
    await c?.close();
  });

  it("a range below the limit answers 200; above it 413 response_too_large on the leader and on the follower", async () => {
    const below = await c.request(leader, "GET", "/v1/kv?prefix=big/&limit=5");
    const belowBody = (await below.json()) as { kvs: unknown[]; more: boolean; count: number };
    assert.equal(below.status, 200);
    assert.equal(belowBody.kvs.length, 5);
    assert.equal(belowBody.more, true);
    assert.equal(belowBody.count, KEYS);
    for (const id of [leader, follower]) {
      for (const consistency of ["linearizable", "stale", "lease"]) {
        assertTooLarge(await answer(await c.request(id, "GET", `/v1/kv?prefix=big/&consistency=${consistency}`)));
      }
    }
    // keysOnly and countOnly carry no values: they fit.
    const keys = await c.request(follower, "GET", "/v1/kv?prefix=big/&keysOnly=true");
    assert.equal(keys.status, 200, await keys.clone().text());
    assert.equal(((await keys.json()) as { kvs: unknown[] }).kvs.length, KEYS);
    const count = await c.request(follower, "GET", "/v1/kv?prefix=big/&countOnly=true");
    assert.equal(((await count.json()) as { count: number }).count, KEYS);
    // One key is never refused (its answer is bounded by the key and value limits).
    const one = await c.request(follower, "GET", "/v1/kv/big/3");
    assert.equal(one.status, 200);
    assert.equal((await one.arrayBuffer()).byteLength, VALUE_BYTES);
  });

  it("a past-revision range is measured from history: above the limit 413, limited to 5 keys 200", async () => {
    const rev = Number((await c.request(leader, "GET", "/v1/kv?prefix=big/&countOnly=true")).headers.get("x-revision"));
    assert.ok(rev >= KEYS, `revision ${rev}`);
    assertTooLarge(await answer(await c.request(leader, "GET", `/v1/kv?prefix=big/&revision=${rev - 1}`)));
    const paged = await c.request(leader, "GET", `/v1/kv?prefix=big/&revision=${rev - 1}&limit=5`);
    assert.equal(paged.status, 200, await paged.clone().text());
    assert.equal(((await paged.json()) as { kvs: unknown[] }).kvs.length, 5);
  });

  it("a txn whose reads are above the limit is refused whole, the same through the follower, and its write is not applied", async () => {
    const headers = { "content-type": "application/json" };
    const big = JSON.stringify({ compare: [], success: [{ op: "put", key: "txn-write", value: "eA==" }, { op: "range", key: "big/", prefix: true }], failure: [] });
    const direct = await answer(await c.request(leader, "POST", "/v1/txn", big, headers));
    const forwarded = await answer(await c.request(follower, "POST", "/v1/txn", big, headers));
    assertTooLarge(direct);
    assert.deepEqual(forwarded, direct);
    assert.equal((await c.request(leader, "GET", "/v1/kv/txn-write")).status, 404);
    // The branch the compares choose is what counts: a false compare runs the small failure branch.
    const chosen = JSON.stringify({
      compare: [{ key: "big/0", target: "version", result: ">", value: 100 }],
      success: [{ op: "range", key: "big/", prefix: true }],
      failure: [{ op: "range", key: "big/", prefix: true, limit: 2 }],
    });
    const small = await c.request(follower, "POST", "/v1/txn", chosen, headers);
    const smallBody = (await small.json()) as { succeeded: boolean; responses: Array<{ kvs: unknown[] }> };
    assert.equal(small.status, 200, JSON.stringify(smallBody));
    assert.equal(smallBody.succeeded, false);
    assert.equal(smallBody.responses[0]?.kvs.length, 2);
  });

  it("a txn that passes the leader's estimate but answers above the limit when applied is refused at apply: 413, nothing written, revision unchanged", async () => {
    // 5 keys of 10 KB (about 50 KB of answer) fit under the limit on the state the leader measures; the
    // branch's own 20 KB put, applied before its range, takes the answer past it. The cap travels in the
    // entry (Command.maxAnswerBytes) and apply refuses the whole txn, the same way writes by other clients
    // between the estimate and the apply are caught.
    for (let i = 0; i < 5; i++) assert.equal((await c.request(leader, "PUT", `/v1/kv/grow/${i}`, new Uint8Array(VALUE_BYTES))).status, 200);
    const headers = { "content-type": "application/json" };
    const revisionOf = async () => Number((await c.request(leader, "GET", "/v1/kv?prefix=grow/&countOnly=true")).headers.get("x-revision"));
    const revision = await revisionOf();
    const grow = JSON.stringify({ compare: [], success: [{ op: "put", key: "grow/new", value: btoa("y".repeat(20_000)) }, { op: "range", key: "grow/", prefix: true }], failure: [] });
    for (const id of [leader, follower]) {
      const refused = await answer(await c.request(id, "POST", "/v1/txn", grow, headers));
      assertTooLarge(refused);
      assert.match(String((refused.body.error as { message: string }).message), /when applied/);
    }
    assert.equal((await c.request(leader, "GET", "/v1/kv/grow/new")).status, 404);
    assert.equal(await revisionOf(), revision);
    // Without the range the same put applies.
    const put = JSON.stringify({ compare: [], success: [{ op: "put", key: "grow/new", value: btoa("y") }], failure: [] });
    const ok = await c.request(follower, "POST", "/v1/txn", put, headers);
    assert.equal(ok.status, 200, await ok.clone().text());
    assert.equal(await revisionOf(), revision + 1);
  });

  it("puts racing read-only txns never push a txn's answer past the limit: each answers 413 or at most the limit", async () => {
    // The breaker's run (docs/nemesis.md): 9 keys of 6 KB (about 55 KB, under the cap) and puts of 6 KB
    // into the same prefix racing txns that read it; 12 of 13 answered txns were above the cap before.
    for (let i = 0; i < 9; i++) assert.equal((await c.request(leader, "PUT", `/v1/kv/race/${i}`, new Uint8Array(6000))).status, 200);
    const headers = { "content-type": "application/json" };
    const read = JSON.stringify({ compare: [], success: [{ op: "range", key: "race/", prefix: true }], failure: [] });
    const txns: Array<Promise<{ status: number; body: Record<string, unknown> }>> = [];
    const puts: Array<Promise<Response>> = [];
    for (let i = 0; i < 20; i++) {
      puts.push(c.request(leader, "PUT", `/v1/kv/race/p${i}`, new Uint8Array(6000)));
      txns.push(c.request(i % 2 === 0 ? leader : follower, "POST", "/v1/txn", read, headers).then(answer));
    }
    for (const p of await Promise.all(puts)) assert.equal(p.status, 200);
    let refused = 0;
    for (const t of await Promise.all(txns)) {
      if (t.status === 413) {
        assertTooLarge(t);
        refused++;
        continue;
      }
      assert.equal(t.status, 200, JSON.stringify(t.body).slice(0, 300));
      const kvs = (t.body.responses as Array<{ kvs: Array<{ key: string; value: string }> }>)[0].kvs;
      const counted = kvs.reduce((n, kv) => n + kv.key.length + atob(kv.value).length + 64, 0);
      assert.ok(counted <= LIMIT_BYTES, `a txn answered ${counted} counted bytes (${kvs.length} keys) above the ${LIMIT_BYTES}-byte limit`);
    }
    // Once all 29 keys (about 176 KB) are in, every such txn is refused.
    assert.ok(refused >= 1, "no txn was refused although the prefix ends above the limit");
    assertTooLarge(await answer(await c.request(leader, "POST", "/v1/txn", read, headers)));
  });

  it("a range delete with prevKv above the limit is refused and deletes nothing; without prevKv it deletes", async () => {
    assertTooLarge(await answer(await c.request(follower, "DELETE", "/v1/kv?prefix=big/&prevKv=true")));
    const count = await c.request(leader, "GET", "/v1/kv?prefix=big/&countOnly=true");
    assert.equal(((await count.json()) as { count: number }).count, KEYS);
    const del = await c.request(follower, "DELETE", "/v1/kv?prefix=big/");
    const delBody = (await del.json()) as { deleted: number };
    assert.equal(del.status, 200, JSON.stringify(delBody));
    assert.equal(delBody.deleted, KEYS);
  });

  it("a client's x-edgekv-forwarded header on a follower write is ignored: the write is forwarded and applied", async () => {
    for (const [method, path, body] of [
      ["PUT", "/v1/kv/fwd-header", "v1"],
      ["POST", "/v1/txn", JSON.stringify({ compare: [], success: [{ op: "put", key: "fwd-header-txn", value: "djI=" }], failure: [] })],
    ] as const) {
      const res = await c.request(follower, method, path, body, { "x-edgekv-forwarded": "n9", "content-type": "application/json" });
      assert.equal(res.status, 200, await res.text());
    }
    const got = await c.request(leader, "GET", "/v1/kv/fwd-header");
    assert.equal(await got.text(), "v1");
    const txnGot = await c.request(leader, "GET", "/v1/kv/fwd-header-txn");
    assert.equal(await txnGot.text(), "v2");
    // A lease read (forwarded on its own stream) with the header is forwarded too, not refused 421.
    const lease = await c.request(follower, "GET", "/v1/kv?prefix=fwd-header&consistency=lease", undefined, { "x-edgekv-forwarded": "n9" });
    assert.equal(lease.status, 200, await lease.clone().text());
    assert.equal(((await lease.json()) as { count: number }).count, 2);
  });
});
