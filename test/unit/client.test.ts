/**
 * The SDK against the real API app over the STUB service (fetch = `app.request`, no network), plus
 * scripted fetches for leader redirects, retries, sessions and deadlines.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createApp } from "../../src/api/app.ts";
import { ApiError } from "../../src/api/errors.ts";
import { CompactedError, CompareFailedError, EdgeKvClient, LeaseNotFoundError, OutcomeUnknownError, TimeoutError, BadRequestError, UnavailableError, text } from "../../src/client/index.ts";
import { neverSent } from "../../src/client/transport.ts";
import { SERVICE_KINDS, closeAllSmServices, type ServiceKind } from "./api-services.ts";

async function setupWith(kind: ServiceKind, format: "json" | "cbor" = "json") {
  const service = await kind.make();
  const app = createApp(service);
  const client = new EdgeKvClient({ endpoints: ["http://n1.test"], format, clientId: "c", fetch: async (input, init) => app.request(input as string, init), random: () => 0 });
  return { service, client };
}

after(() => closeAllSmServices());

for (const kind of SERVICE_KINDS) {
  const setup = (format: "json" | "cbor" = "json") => setupWith(kind, format);
  describe(`client (${kind.name}): kv over the API`, () => {
    it("puts, gets, CASes and deletes", async () => {
      const { client } = await setup();
      const p = await client.put("a/b", "one");
      assert.equal(p.revision, 1);
      const g = (await client.get("a/b"))!;
      assert.deepEqual([g.key, text(g.value), g.modRevision, g.version, g.lease, g.revision], ["a/b", "one", 1, 1, "0", 1]);
      assert.equal(await client.get("nope"), null);
      await assert.rejects(client.put("a/b", "x", { ifAbsent: true }), CompareFailedError);
      await assert.rejects(client.put("a/b", "x", { ifMatch: 9 }), (e: CompareFailedError) => e.status === 412 && e.code === "compare_failed");
      assert.equal((await client.put("a/b", "two", { ifMatch: 1 })).revision, 2);
      assert.deepEqual(await client.delete("a/b", { ifMatch: 2 }), { revision: 3, deleted: 1 });
    });

    it("puts, gets, CASes and deletes the keys '.' and '..' (not addressable by URL path)", async () => {
      const { client } = await setup();
      assert.equal((await client.put(".", "dot")).revision, 1);
      assert.equal((await client.put("..", "dots", { ifAbsent: true })).revision, 2);
      await assert.rejects(client.put("..", "x", { ifAbsent: true }), (e: unknown) => e instanceof CompareFailedError && e.status === 412);
      const g = (await client.get(".."))!;
      assert.deepEqual([g.key, text(g.value), g.modRevision, g.version, g.revision], ["..", "dots", 2, 1, 2]);
      assert.equal(text((await client.get("."))!.value), "dot");
      await assert.rejects(client.put(".", "x", { ifMatch: 9 }), CompareFailedError);
      assert.equal((await client.put(".", "dot2", { ifMatch: 1 })).revision, 3);
      assert.deepEqual((await client.range({ prefix: "" })).kvs.map((kv) => [kv.key, text(kv.value)]), [[".", "dot2"], ["..", "dots"]]);
      assert.deepEqual(await client.delete("..", { ifMatch: 2 }), { revision: 4, deleted: 1 });
      assert.equal(await client.get(".."), null);
      assert.equal((await client.delete(".")).deleted, 1);
    });

    for (const format of ["json", "cbor"] as const) {
      it(`ranges and runs txns (${format})`, async () => {
        const { client } = await setup(format);
        for (const k of ["p/1", "p/2", "q"]) await client.put(k, new Uint8Array([k.length, 255]));
        const r = await client.range({ prefix: "p/" });
        assert.deepEqual(r.kvs.map((kv) => [kv.key, [...kv.value]]), [["p/1", [3, 255]], ["p/2", [3, 255]]]);
        assert.deepEqual((await client.range({ start: "p/2" })).kvs.map((kv) => kv.key), ["p/2", "q"]);
        assert.deepEqual((await client.range({ key: "q" })).kvs.map((kv) => kv.key), ["q"]);
        await assert.rejects(client.range({ start: "q", end: "p" }), BadRequestError);
        const t = await client.txn({
          compare: [{ key: "q", target: "value", result: "=", value: new Uint8Array([1, 255]) }],
          success: [{ op: "put", key: "t", value: "ok" }, { op: "range", key: "p/", prefix: true }],
          failure: [{ op: "put", key: "t", value: "no" }],
        });
        assert.equal(t.succeeded, true);
        assert.deepEqual(t.responses.map((x) => x.op), ["put", "range"]);
        assert.equal(t.responses[1].op === "range" && t.responses[1].count, 2);
        assert.equal(text((await client.get("t"))!.value), "ok");
        assert.deepEqual(await client.deleteRange({ prefix: "p/" }), { revision: 5, deleted: 2 });
      });
    }

    it("grants leases, attaches keys and reports a missing lease as LeaseNotFoundError", async () => {
      const { client } = await setup();
      const l = await client.leaseGrant(20);
      await client.put("k", "v", { lease: l.id });
      assert.equal((await client.get("k"))!.lease, l.id);
      assert.deepEqual((await client.leaseTimeToLive(l.id, { keys: true })).keys, ["k"]);
      assert.equal((await client.leaseKeepAlive(l.id)).ttl, 20);
      assert.equal((await client.leaseRevoke(l.id)).deleted, 1);
      await assert.rejects(client.leaseKeepAlive(l.id), LeaseNotFoundError);
      await assert.rejects(client.put("k", "v", { lease: "0" }), BadRequestError);
    });

    it("watches from a revision and stops on abort; compacted history throws CompactedError", async () => {
      const { client } = await setup();
      await client.put("w", "1");
      await client.put("w", "2");
      const ac = new AbortController();
      const seen: string[] = [];
      const timer = setTimeout(() => ac.abort(), 5000);
      for await (const m of client.watch({ key: "w" }, { fromRevision: 1, signal: ac.signal })) {
        if (m.type === "events") for (const e of m.events) seen.push(`${e.type}:${text(e.kv.value)}@${e.kv.modRevision}`);
        if (m.type === "progress" && seen.length === 2) void client.delete("w");
        if (seen.length === 3) ac.abort();
      }
      clearTimeout(timer);
      assert.deepEqual(seen, ["put:1@1", "put:2@2", "delete:@3"]);
      await client.compact(3);
      const it2 = client.watch({ key: "w" }, { fromRevision: 1 });
      await assert.rejects(it2.next(), (e: CompactedError) => e instanceof CompactedError && e.details.compactRevision === 3);
    });

    it("returns the cluster view and drives membership", async () => {
      const { client, service } = await setup();
      assert.equal((await client.cluster()).leaderId, "n1");
      await client.addLearner("n4", "http://127.0.0.1:7004", "http://127.0.0.1:8084");
      await client.promote("n4");
      await client.transferLeader("n4");
      await assert.rejects(client.removeMember("n9"), (e: Error & { code: string }) => e.code === "not_found");
      assert.deepEqual(service.calls.slice(-4).map((c) => c.method), ["addLearner", "promote", "transferLeader", "remove"]);
      assert.equal(await client.health(), true);
    });
  });
}

/** A fetch that answers from a script of (url -> handler), recording calls. */
function scripted(handler: (url: string, init: RequestInit, n: number) => Response | Promise<Response>) {
  const calls: Array<{ url: string; headers: Record<string, string> }> = [];
  const f = (async (input: string | URL | Request, init?: RequestInit) => {
    const url = String(input);
    calls.push({ url, headers: { ...(init?.headers as Record<string, string>) } });
    return handler(url, init ?? {}, calls.length);
  }) as typeof fetch;
  return { f, calls };
}

const errorResponse = (status: number, code: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify({ error: { code, message: code, ...extra } }), { status, headers: { "content-type": "application/json", ...headers } });

describe("client: leader following, retries, sessions, deadlines", () => {
  it("follows a not_leader hint to the leader and remembers it", async () => {
    const { f, calls } = scripted((url) =>
      url.startsWith("http://a") ? errorResponse(421, "not_leader", { leader: { id: "b", clientUrl: "http://b" } }) : new Response(JSON.stringify({ revision: 5 })),
    );
    const c = new EdgeKvClient({ endpoints: ["http://a"], fetch: f, random: () => 0 });
    assert.equal((await c.put("k", "v")).revision, 5);
    assert.equal((await c.put("k", "v")).revision, 5);
    assert.deepEqual(calls.map((x) => x.url), ["http://a/v1/kv/k", "http://b/v1/kv/k", "http://b/v1/kv/k"]);
  });

  it("moves to the next endpoint on a not_leader without a leader URL", async () => {
    const { f, calls } = scripted((url) => (url.startsWith("http://a") ? errorResponse(421, "not_leader", { leader: { id: "b", clientUrl: "" } }) : new Response(JSON.stringify({ revision: 2 }))));
    const c = new EdgeKvClient({ endpoints: ["http://a", "http://b"], fetch: f, random: () => 0, retry: { baseMs: 1 } });
    assert.equal((await c.put("k", "v")).revision, 2);
    assert.deepEqual(calls.map((x) => x.url), ["http://a/v1/kv/k", "http://b/v1/kv/k"]);
  });

  it("retries a write on 503 and network errors with the same session, then moves to the next sequence", async () => {
    const { f, calls } = scripted((_url, _init, n) => {
      if (n === 1) return errorResponse(503, "no_leader", {}, { "retry-after": "0" });
      if (n === 2) throw new TypeError("connection reset");
      return new Response(JSON.stringify({ revision: n }));
    });
    const c = new EdgeKvClient({ endpoints: ["http://a", "http://b"], clientId: "cid", fetch: f, random: () => 0, retry: { baseMs: 1 } });
    assert.equal((await c.put("k", "v")).revision, 3);
    await c.put("k", "w");
    assert.deepEqual(calls.map((x) => [x.url.slice(0, 8), x.headers["x-client-id"], x.headers["x-request-seq"]]), [
      ["http://a", "cid", "1"],
      ["http://b", "cid", "1"],
      ["http://a", "cid", "1"],
      ["http://a", "cid", "3"],
    ]);
  });

  it("picks a random 128-bit hex client id when none is given", async () => {
    const { f, calls } = scripted(() => new Response(JSON.stringify({ revision: 1 })));
    await new EdgeKvClient({ endpoints: ["http://a"], fetch: f }).put("k", "v");
    await new EdgeKvClient({ endpoints: ["http://a"], fetch: f }).put("k", "v");
    const [a, b] = calls.map((c) => c.headers["x-client-id"]);
    assert.match(a, /^[0-9a-f]{32}$/);
    assert.notEqual(a, b);
  });

  it("gives concurrent writes distinct client ids (one request per session at a time)", async () => {
    const { f, calls } = scripted(async () => {
      await new Promise((r) => setTimeout(r, 5));
      return new Response(JSON.stringify({ revision: 1 }));
    });
    const c = new EdgeKvClient({ endpoints: ["http://a"], clientId: "cid", fetch: f });
    await Promise.all([c.put("a", "1"), c.put("b", "2"), c.put("c", "3")]);
    assert.deepEqual(new Set(calls.map((x) => x.headers["x-client-id"])), new Set(["cid", "cid-1", "cid-2"]));
  });

  it("reports OutcomeUnknownError when a write's answer is lost on every attempt, UnavailableError for a read", async () => {
    const { f } = scripted(() => {
      throw new TypeError("fetch failed");
    });
    const c = new EdgeKvClient({ endpoints: ["http://a"], fetch: f, random: () => 0, retry: { attempts: 3, baseMs: 1 } });
    await assert.rejects(c.put("k", "v"), OutcomeUnknownError);
    await assert.rejects(c.get("k"), UnavailableError);
    await assert.rejects(c.addLearner("n", "http://p", "http://c"), OutcomeUnknownError);
  });

  // A watch stream that ends early, by the node's watch_overflow error event or by a dropped connection,
  // is opened again from the last revision seen + 1: each case scripts the answers to the 1st, 2nd, ...
  // watch request (the last one repeats) and lists the revisions seen and each request's fromRevision.
  const sse = (body: string) => new Response(body, { headers: { "content-type": "text/event-stream" } });
  const batch = (rev: number) => `event: events\nid: ${rev}\ndata: ${JSON.stringify({ revision: rev, events: [{ type: "put", kv: { key: "k", value: btoa(String(rev)), createRevision: 1, modRevision: rev, version: rev, lease: "0" } }] })}\n\n`;
  const progress = (rev: number) => `event: progress\nid: ${rev}\ndata: {"revision":${rev}}\n\n`;
  const rewatchCases: Array<{ name: string; answers: Array<() => Response>; revisions: number[]; fromRevisions: string[] }> = [
    {
      name: "re-watches from the last revision seen + 1 after a watch_overflow error event",
      answers: [() => sse(batch(4) + `event: error\ndata: {"error":{"code":"watch_overflow","message":"slow","resumeRevision":5}}\n\n`), () => sse(batch(5) + progress(5))],
      revisions: [4, 5],
      fromRevisions: ["4", "5"],
    },
    {
      name: "resumes a dropped watch from the last revision seen + 1, without repeats",
      answers: [
        () => sse(batch(4) + batch(5)),
        () => {
          throw new TypeError("connection refused");
        },
        () => sse(batch(6) + progress(6)),
      ],
      revisions: [4, 5, 6],
      fromRevisions: ["4", "6", "6"],
    },
  ];
  for (const tc of rewatchCases) {
    it(tc.name, async () => {
      const { f, calls } = scripted((_u, _i, n) => tc.answers[Math.min(n, tc.answers.length) - 1]());
      const c = new EdgeKvClient({ endpoints: ["http://a"], fetch: f, random: () => 0, retry: { baseMs: 1 } });
      const ac = new AbortController();
      const revs: number[] = [];
      for await (const m of c.watch({ prefix: "k" }, { fromRevision: 4, signal: ac.signal })) {
        if (m.type === "events") revs.push(...m.events.map((e) => e.kv.modRevision));
        else ac.abort();
      }
      assert.deepEqual(revs, tc.revisions);
      assert.deepEqual(calls.map((x) => new URL(x.url).searchParams.get("fromRevision")), tc.fromRevisions);
    });
  }

  it("does not retry a definite error", async () => {
    const { f, calls } = scripted(() => errorResponse(412, "compare_failed"));
    const c = new EdgeKvClient({ endpoints: ["http://a"], fetch: f });
    await assert.rejects(c.put("k", "v", { ifAbsent: true }), CompareFailedError);
    assert.equal(calls.length, 1);
  });

  it("ends a hanging read at its deadline with TimeoutError", async () => {
    const { f } = scripted(
      (_u, init) =>
        new Promise<Response>((_r, reject) => {
          init.signal!.addEventListener("abort", () => reject(init.signal!.reason), { once: true });
        }),
    );
    const c = new EdgeKvClient({ endpoints: ["http://a"], fetch: f });
    // AbortSignal.timeout's timer does not keep Node's event loop alive; a real fetch would.
    const keepAlive = setTimeout(() => {}, 5000);
    await assert.rejects(c.get("k", { timeoutMs: 30 }), TimeoutError);
    await assert.rejects(c.put("k", "v", { timeoutMs: 30 }), OutcomeUnknownError);
    clearTimeout(keepAlive);
  });

  it("maps a service ApiError through the app to the typed SDK error", async () => {
    const { client, service } = await setupWith(SERVICE_KINDS[0]);
    service.failNext = new ApiError("future_revision", "revision 99 is in the future");
    await assert.rejects(client.get("k", { revision: 99 }), (e: Error & { code: string; status: number }) => e.code === "future_revision" && e.status === 400);
  });
});

/** A loopback port nobody listens on: bound by the OS, then closed (connection refused on all runtimes). */
async function closedPort(): Promise<number> {
  const net = await import("node:net");
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

describe("client: a request that never left is not outcome_unknown", () => {
  it("throws UnavailableError (network) for a write and an admin call to a closed loopback port", async () => {
    const dead = `http://127.0.0.1:${await closedPort()}`;
    const c = new EdgeKvClient({ endpoints: [dead], random: () => 0, retry: { attempts: 2, baseMs: 1 }, timeoutMs: 10_000 });
    const isNetwork = (e: unknown) => e instanceof UnavailableError && !(e instanceof OutcomeUnknownError) && e.code === "network" && e.status === 0;
    await assert.rejects(c.put("k", "v"), isNetwork);
    await assert.rejects(c.addLearner("n", "http://p", "http://c"), isNetwork);
  });

  it("reports a live node's 503 no_leader rather than a dead endpoint's network error", async () => {
    const dead = `http://127.0.0.1:${await closedPort()}`;
    const realFetch = globalThis.fetch.bind(globalThis);
    const f = (async (input: string | URL | Request, init?: RequestInit) =>
      String(input).startsWith("http://live") ? errorResponse(503, "no_leader") : realFetch(input, init)) as typeof fetch;
    const c = new EdgeKvClient({ endpoints: ["http://live", dead], fetch: f, random: () => 0, retry: { attempts: 4, baseMs: 1 }, timeoutMs: 10_000 });
    await assert.rejects(c.put("k", "v"), (e: unknown) => e instanceof UnavailableError && (e as UnavailableError).code === "no_leader" && (e as UnavailableError).status === 503);
    await assert.rejects(c.get("k"), (e: unknown) => (e as UnavailableError).code === "no_leader");
  });

  it("classifies runtime connect failures as never sent, a reset as maybe sent", () => {
    const refusedNode = Object.assign(new TypeError("fetch failed"), { cause: Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" }) });
    const refusedBun = Object.assign(new TypeError("Unable to connect"), { code: "ConnectionRefused" });
    const refusedDeno = Object.assign(new TypeError("fetch failed"), { cause: new Error("client error (Connect): tcp connect error: Connection refused (os error 111)") });
    const dnsNode = Object.assign(new TypeError("fetch failed"), { cause: Object.assign(new Error("getaddrinfo ENOTFOUND x"), { code: "ENOTFOUND" }) });
    for (const e of [refusedNode, refusedBun, refusedDeno, dnsNode]) assert.equal(neverSent(e), true, String(e));
    const reset = Object.assign(new TypeError("fetch failed"), { cause: Object.assign(new Error("socket hang up"), { code: "ECONNRESET" }) });
    assert.equal(neverSent(reset), false);
    assert.equal(neverSent(new TypeError("fetch failed")), false);
  });

  it("refuses an inverted range and a malformed member before sending; orders range ends by UTF-8 bytes as the server does", async () => {
    const sent: string[] = [];
    const c = new EdgeKvClient({ endpoints: ["http://n1.test"], clientId: "c", fetch: (async (input: string) => {
      sent.push(String(input));
      return new Response(JSON.stringify({ kvs: [], more: false, count: 0, revision: 1 }), { headers: { "content-type": "application/json" } });
    }) as typeof fetch });
    await assert.rejects(c.deleteRange({ start: "b", end: "a" }), (e: unknown) => e instanceof BadRequestError && /start "b" must be below end "a"/.test((e as Error).message));
    await assert.rejects(c.range({ start: "b", end: "b" }), BadRequestError);
    await assert.rejects(c.watch({ start: "b", end: "a" }).next(), BadRequestError);
    await assert.rejects(c.addLearner("n4", "http://a:1", "ftp://b"), (e: unknown) => e instanceof BadRequestError && /client URL "ftp:\/\/b"/.test((e as Error).message));
    await assert.rejects(c.addLearner("", "http://a:1", "http://b:1"), BadRequestError);
    assert.deepEqual(sent, []);
    // The two server modules the SDK imports at run time (the member rule, the key order) must import nothing.
    for (const m of ["../../src/api/member-input.ts", "../../src/kv/types.ts"]) {
      const source = readFileSync(new URL(m, import.meta.url), "utf8");
      assert.doesNotMatch(source, /^\s*(import|export\s.*\sfrom)\s/m, m);
    }
    // U+FFFF sorts after U+1F600 in UTF-16 (JavaScript's <) but before it in UTF-8, the server's order.
    await c.range({ start: "\uFFFF", end: "\u{1F600}" });
    assert.equal(sent.length, 1);
  });

  it("a base URL with a wrong path makes get throw no_route, not answer null as for a missing key", async () => {
    // The server's answer for a path that is no route (a proxy prefix the node does not serve, a typo):
    // before, it was the missing key's `not_found`, and `get` answered null for every key.
    const app = createApp((await SERVICE_KINDS[0]!.make()));
    const client = new EdgeKvClient({ endpoints: ["http://n1.test/edgekv"], clientId: "c", fetch: async (input, init) => app.request(input as string, init), random: () => 0 });
    await assert.rejects(client.get("a"), (e: Error & { code: string; status: number }) => e.code === "no_route" && e.status === 404 && /no route for GET \/edgekv\/v1\/kv\/a/.test(e.message));
    const right = new EdgeKvClient({ endpoints: ["http://n1.test"], clientId: "c", fetch: async (input, init) => app.request(input as string, init), random: () => 0 });
    assert.equal(await right.get("a"), null);
  });

  it("refuses a malformed endpoint at construction and an empty key as BadRequestError", async () => {
    assert.throws(() => new EdgeKvClient({ endpoints: ["not a url"] }), (e: unknown) => e instanceof BadRequestError && (e as BadRequestError).code === "bad_request");
    assert.throws(() => new EdgeKvClient({ endpoints: ["ftp://a"] }), BadRequestError);
    const c = new EdgeKvClient({ endpoints: ["http://a"], fetch: (async () => new Response("{}")) as typeof fetch });
    await assert.rejects(c.put("", "x"), (e: unknown) => e instanceof BadRequestError && (e as BadRequestError).code === "bad_request");
  });
});
