/**
 * The v1 API's watch stream (SSE), leases, cluster/membership, health and metrics routes, over the STUB
 * service (api-stub-service.ts). No network: `app.request(...)`; every stream read is bounded.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createApp } from "../../src/api/app.ts";
import { SERVICE_KINDS, closeAllSmServices, type ServiceKind } from "./api-services.ts";
import { StubKvService } from "./api-stub-service.ts";

const BASE = "http://edgekv.test";

async function setupWith(kind: ServiceKind) {
  const service = await kind.make();
  const app = createApp(service, { nowMs: () => 0 });
  const req = (path: string, init?: RequestInit) => app.request(BASE + path, init);
  return { service, app, req };
}

interface SseEvent {
  event: string;
  id?: string;
  data: unknown;
}

/** Reads SSE events from `res` until `count` arrived or the stream ends; gives up after 5 s. */
async function readEvents(res: Response, count: number): Promise<SseEvent[]> {
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  const out: SseEvent[] = [];
  let buf = "";
  const deadline = Date.now() + 5000;
  while (out.length < count && Date.now() < deadline) {
    let handle: ReturnType<typeof setTimeout> | undefined;
    const timer = new Promise<{ done: true; value: undefined }>((r) => (handle = setTimeout(() => r({ done: true, value: undefined }), deadline - Date.now())));
    const { done, value } = await Promise.race([reader.read(), timer]);
    clearTimeout(handle);
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let i: number;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const ev: SseEvent = { event: "message", data: undefined };
      const data: string[] = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) ev.event = line.slice(7);
        else if (line.startsWith("id: ")) ev.id = line.slice(4);
        else if (line.startsWith("data: ")) data.push(line.slice(6));
      }
      ev.data = JSON.parse(data.join("\n"));
      out.push(ev);
    }
  }
  await reader.cancel().catch(() => {});
  return out;
}

after(() => closeAllSmServices());

for (const kind of SERVICE_KINDS) {
  const setup = () => setupWith(kind);
  describe(`api (${kind.name}): watch (server-sent events)`, () => {
    it("replays history from a revision, then streams new events, with ids for resuming", async () => {
      const { req } = await setup();
      await req("/v1/kv/w/a", { method: "PUT", body: "1" });
      await req("/v1/kv/other", { method: "PUT", body: "x" });
      await req("/v1/kv/w/b", { method: "PUT", body: "2" });
      const ac = new AbortController();
      const res = await req("/v1/watch?prefix=w/&fromRevision=1", { signal: ac.signal });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("content-type"), "text/event-stream");
      const later = setTimeout(() => void req("/v1/kv/w/a", { method: "DELETE" }), 20);
      const events = await readEvents(res, 3);
      clearTimeout(later);
      ac.abort();
      assert.deepEqual(events.map((e) => [e.event, e.id]), [["events", "3"], ["progress", "3"], ["events", "4"]]);
      const first = events[0].data as { events: Array<{ type: string; kv: { key: string; value: string; modRevision: number } }> };
      assert.deepEqual(first.events.map((e) => [e.type, e.kv.key, atob(e.kv.value), e.kv.modRevision]), [["put", "w/a", "1", 1], ["put", "w/b", "2", 3]]);
      const del = events[2].data as { events: Array<{ type: string; kv: { key: string } }> };
      assert.deepEqual(del.events.map((e) => [e.type, e.kv.key]), [["delete", "w/a"]]);
    });

    it("resumes after Last-Event-ID", async () => {
      const { req } = await setup();
      for (const v of ["1", "2", "3"]) await req("/v1/kv/k", { method: "PUT", body: v });
      const ac = new AbortController();
      const events = await readEvents(await req("/v1/watch?key=k", { signal: ac.signal, headers: { "last-event-id": "2" } }), 1);
      ac.abort();
      assert.equal(events[0].id, "3");
      assert.equal((events[0].data as { events: unknown[] }).events.length, 1);
    });

    it("sends a compacted error event naming the compact revision (C05)", async () => {
      const { req } = await setup();
      for (const v of ["1", "2", "3"]) await req("/v1/kv/k", { method: "PUT", body: v });
      assert.equal((await req("/v1/compact", { method: "POST", body: JSON.stringify({ revision: 3 }) })).status, 200);
      const zero = await req("/v1/compact", { method: "POST", body: JSON.stringify({ revision: 0 }) });
      assert.deepEqual([zero.status, ((await zero.json()) as { error: { message: string } }).error.message], [400, "revision: must be at least 1 (revision 0 is before the first write)"]);
      const events = await readEvents(await req("/v1/watch?key=k&fromRevision=1"), 2);
      assert.equal(events.length, 1, "the stream ends after the error");
      assert.equal(events[0].event, "error");
      assert.deepEqual((events[0].data as { error: { code: string; compactRevision: number } }).error.code, "compacted");
      assert.deepEqual((events[0].data as { error: { compactRevision: number } }).error.compactRevision, 3);
    });

    it("rejects an inverted or missing range with a plain 400 (C21)", async () => {
      const { req } = await setup();
      for (const q of ["start=c&end=a", "", "key=", "key=a&fromRevision=0", "key=a&prefix=b"]) {
        const res = await req(`/v1/watch?${q}`);
        assert.deepEqual([q, res.status, ((await res.json()) as { error: { code: string } }).error.code], [q, 400, "bad_request"]);
      }
      const none = await req("/v1/watch");
      assert.equal(((await none.json()) as { error: { message: string } }).error.message, "give key=..., prefix=... or start=...[&end=...]");
    });
  });

  describe(`api (${kind.name}): leases`, () => {
    it("grants, keeps alive, reports TTL with keys, and revokes (deleting keys)", async () => {
      const { req } = await setup();
      const g = (await (await req("/v1/leases", { method: "POST", body: JSON.stringify({ ttl: 10 }) })).json()) as { id: string; ttl: number };
      assert.match(g.id, /^[1-9][0-9]*$/);
      await req(`/v1/kv/l1?lease=${g.id}`, { method: "PUT", body: "v" });
      assert.deepEqual(await (await req(`/v1/leases/${g.id}/keepalive`, { method: "POST" })).json(), { id: g.id, ttl: 10, grantedTtl: 10 });
      assert.deepEqual(await (await req(`/v1/leases/${g.id}?keys`)).json(), { id: g.id, ttl: 10, grantedTtl: 10, keys: ["l1"] });
      const rv = (await (await req(`/v1/leases/${g.id}`, { method: "DELETE" })).json()) as { deleted: number };
      assert.equal(rv.deleted, 1);
      assert.equal((await req("/v1/kv/l1")).status, 404);
      const gone = await req(`/v1/leases/${g.id}/keepalive`, { method: "POST" });
      assert.equal(gone.status, 404);
      assert.equal(((await gone.json()) as { error: { code: string } }).error.code, "lease_not_found");
    });

    it("validates the grant body and lease ids in paths", async () => {
      const { req } = await setup();
      for (const b of ['{"ttl":0}', '{"ttl":1.5}', '{"ttl":"10"}', "{}", '{"ttl":10,"x":1}', "nope"]) {
        assert.equal((await req("/v1/leases", { method: "POST", body: b })).status, 400, b);
      }
      for (const id of ["0", "-1", "abc", "1e3"]) assert.equal((await req(`/v1/leases/${id}`)).status, 400, id);
      assert.equal((await req("/v1/leases/99999")).status, 404);
    });
  });

  describe(`api (${kind.name}): cluster, health, metrics`, () => {
    it("shows the cluster view and drives membership", async () => {
      const { req, service } = await setup();
      const view = (await (await req("/v1/cluster")).json()) as { leaderId: string; members: Array<{ id: string; role: string }> };
      assert.equal(view.leaderId, "n1");
      const add = await req("/v1/cluster/members", { method: "POST", body: JSON.stringify({ id: "n4", peerUrl: "http://127.0.0.1:7004", clientUrl: "http://127.0.0.1:8084" }) });
      assert.equal(add.status, 200);
      assert.deepEqual(((await add.json()) as typeof view).members.map((m) => [m.id, m.role]), [["n1", "voter"], ["n4", "learner"]]);
      assert.equal((await req("/v1/cluster/members/n4/promote", { method: "POST" })).status, 200);
      assert.equal((await req("/v1/cluster/leader", { method: "POST", body: JSON.stringify({ id: "n4" }) })).status, 200);
      assert.deepEqual(service.calls.slice(-3).map((c) => [c.method, (c.opts as { id: string }).id]), [["addLearner", "n4"], ["promote", "n4"], ["transferLeader", "n4"]]);
      assert.equal((await req("/v1/cluster/members/n9", { method: "DELETE" })).status, 404);
      for (const b of [{ id: "n5", peerUrl: "not a url", clientUrl: "http://x" }, { id: "bad id!", peerUrl: "http://a", clientUrl: "http://b" }, { id: "n5" }]) {
        assert.equal((await req("/v1/cluster/members", { method: "POST", body: JSON.stringify(b) })).status, 400);
      }
    });

    it("answers health and readiness, 503 with Retry-After when not ready", async () => {
      const { req, service } = await setup();
      assert.deepEqual([(await req("/healthz")).status, (await req("/readyz")).status], [200, 200]);
      service.ready = false;
      const r = await req("/readyz");
      assert.deepEqual([r.status, r.headers.get("retry-after")], [503, "1"]);
      assert.deepEqual(await r.json(), { ok: false, reason: "no leader" });
    });

    it("exposes per-route latency histograms and the service's own metrics", async () => {
      const { req } = await setup();
      await req("/v1/kv/a", { method: "PUT", body: "1" });
      await req("/v1/kv/a");
      await req("/v1/kv/zz");
      const text = await (await req("/metrics")).text();
      assert.match(text, /^# TYPE edgekv_http_request_duration_seconds histogram$/m);
      assert.match(text, /^edgekv_http_request_duration_seconds_count\{method="GET",route="\/v1\/kv\/\*"\} 2$/m);
      assert.match(text, /^edgekv_http_request_duration_seconds_bucket\{method="PUT",route="\/v1\/kv\/\*",le="0.0005"\} 1$/m);
      assert.match(text, /^edgekv_http_requests_total\{method="GET",route="\/v1\/kv\/\*",status="404"\} 1$/m);
      assert.match(text, /^edgekv_stub_up 1$/m);
    });
  });
}

describe("api: CORS for browsers", () => {
  it("answers preflights and exposes the API headers only for configured origins", async () => {
    const app = createApp(new StubKvService(), { corsOrigins: ["https://app.example"] });
    const pre = await app.request(BASE + "/v1/kv/k", { method: "OPTIONS", headers: { origin: "https://app.example", "access-control-request-method": "PUT", "access-control-request-headers": "if-match,x-client-id" } });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get("access-control-allow-origin"), "https://app.example");
    assert.match(pre.headers.get("access-control-allow-headers") ?? "", /If-Match.*X-Client-Id/);
    await app.request(BASE + "/v1/kv/k", { method: "PUT", body: "v" });
    const get = await app.request(BASE + "/v1/kv/k", { headers: { origin: "https://app.example" } });
    assert.match(get.headers.get("access-control-expose-headers") ?? "", /ETag.*X-Revision/);
    const other = await app.request(BASE + "/v1/kv/k", { headers: { origin: "https://evil.example" } });
    assert.equal(other.headers.get("access-control-allow-origin"), null);
    const none = await createApp(new StubKvService()).request(BASE + "/healthz", { headers: { origin: "https://app.example" } });
    assert.equal(none.headers.get("access-control-allow-origin"), null);
  });
});
