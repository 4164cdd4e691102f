/**
 * Watch backpressure (src/api/watch-route.ts): a watch whose client never reads is cut off with an
 * `error` event `watch_overflow` once its queue is full and the client took nothing for the stall time,
 * while reading watches on the same node get every event; an unread watch's queue stays under the bound
 * (the route's `maxQueuedBytes` counter); each event is encoded once however many watches send it; the
 * number of watches per node is capped (429 `too_many_requests`). No network: `app.request(...)`.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createApp } from "../../src/api/app.ts";
import { newWatchStats } from "../../src/api/watch-route.ts";
import { SERVICE_KINDS, closeAllSmServices } from "./api-services.ts";
import { Harness, b } from "./kv-helpers.ts";

const BASE = "http://edgekv.test";
const BOUND = 64 * 1024;
const PUTS = 40;
const VALUE_BYTES = 16 * 1024;

interface SseEvent {
  event: string;
  data: { events?: Array<{ kv: { key: string } }>; error?: { code: string; resumeRevision?: number } };
}

/** Reads SSE blocks until `enough(events)` or the stream ends; gives up after 10 s. */
async function readUntil(res: Response, enough: (evs: SseEvent[]) => boolean): Promise<SseEvent[]> {
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  const out: SseEvent[] = [];
  let buf = "";
  const deadline = Date.now() + 10_000;
  while (!enough(out) && Date.now() < deadline) {
    let handle: ReturnType<typeof setTimeout> | undefined;
    const timer = new Promise<{ done: true; value: undefined }>((r) => (handle = setTimeout(() => r({ done: true, value: undefined }), Math.max(1, deadline - Date.now()))));
    const { done, value } = await Promise.race([reader.read(), timer]);
    clearTimeout(handle);
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let i: number;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const ev: SseEvent = { event: "message", data: {} };
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) ev.event = line.slice(7);
        else if (line.startsWith("data: ")) ev.data = JSON.parse(line.slice(6));
      }
      out.push(ev);
    }
  }
  await reader.cancel().catch(() => {});
  return out;
}

const putCount = (evs: SseEvent[]) => evs.reduce((n, e) => n + (e.event === "events" ? e.data.events!.length : 0), 0);

after(() => closeAllSmServices());

for (const kind of SERVICE_KINDS) {
  describe(`watch backpressure (${kind.name})`, () => {
    it("cuts off a watch that never reads with watch_overflow, under the bound, while readers get every event; one encode per event", async () => {
      const stats = newWatchStats();
      const app = createApp(await kind.make(), { nowMs: () => 0, watchMaxQueuedBytes: BOUND, watchStallMs: 100, watchStats: stats });
      const req = (path: string, init?: RequestInit) => app.request(BASE + path, init);
      const unread = await req("/v1/watch?prefix=s/&fromRevision=1");
      const readers = [await req("/v1/watch?prefix=s/&fromRevision=1"), await req("/v1/watch?prefix=s/&fromRevision=1")];
      assert.deepEqual([unread.status, ...readers.map((r) => r.status)], [200, 200, 200]);
      const reading = readers.map((r) => readUntil(r, (evs) => putCount(evs) >= PUTS));
      const value = "v".repeat(VALUE_BYTES);
      for (let i = 0; i < PUTS; i++) assert.equal((await req(`/v1/kv/s/${i}`, { method: "PUT", body: value })).status, 200);
      const got = await Promise.all(reading);
      for (const evs of got) {
        assert.deepEqual(evs.filter((e) => e.event === "error"), []);
        assert.deepEqual(evs.flatMap((e) => (e.event === "events" ? e.data.events!.map((x) => x.kv.key) : [])), Array.from({ length: PUTS }, (_, i) => `s/${i}`));
      }
      // The unread watch: bounded wait for the cut (the stall time is 100 ms).
      for (let i = 0; i < 100 && stats.overflows === 0; i++) await new Promise((r) => setTimeout(r, 50));
      assert.equal(stats.overflows, 1);
      const cut = await readUntil(unread, () => false);
      assert.deepEqual(cut.map((e) => [e.event, e.data.error?.code, e.data.error?.resumeRevision]), [["error", "watch_overflow", 1]]);
      // ~40 x 22 KB of base64 JSON was sent to the readers; no queue ever held more than the bound plus a block.
      assert.ok(stats.maxQueuedBytes >= BOUND, `the unread queue filled (${stats.maxQueuedBytes})`);
      assert.ok(stats.maxQueuedBytes < BOUND + 3 * VALUE_BYTES, `queued ${stats.maxQueuedBytes} bytes, bound ${BOUND}`);
      assert.equal(stats.encodes, PUTS, "each event encoded once for three watches");
      for (let i = 0; i < 100 && stats.active > 0; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(stats.active, 0);
    });

    it("caps watches per node with 429 too_many_requests and frees the slot when a watch ends", async () => {
      const stats = newWatchStats();
      const app = createApp(await kind.make(), { nowMs: () => 0, maxWatches: 2, watchStats: stats });
      const req = (path: string, init?: RequestInit) => app.request(BASE + path, init);
      const acs = [new AbortController(), new AbortController()];
      const open = [await req("/v1/watch?key=k", { signal: acs[0].signal }), await req("/v1/watch?key=k", { signal: acs[1].signal })];
      assert.deepEqual(open.map((r) => r.status), [200, 200]);
      const over = await req("/v1/watch?key=k");
      assert.equal(over.status, 429);
      assert.equal(((await over.json()) as { error: { code: string } }).error.code, "too_many_requests");
      acs[0].abort();
      await open[0].body!.cancel().catch(() => {});
      for (let i = 0; i < 100 && stats.active > 1; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(stats.active, 1);
      const again = await req("/v1/watch?key=k", { signal: acs[0].signal });
      assert.equal(again.status, 200);
      await again.body!.cancel().catch(() => {});
      acs[1].abort();
      await open[1].body!.cancel().catch(() => {});
    });
  });
}

describe("watch history pages are bounded in bytes", () => {
  it("eventsSince with maxBytes returns only the events that fit (at least one), and paging still sees every event once", async () => {
    const h = await Harness.open();
    const big = new Uint8Array(100_000).fill(97);
    for (let i = 0; i < 30; i++) h.ok({ op: "put", key: b(`s/${i}`), value: big });
    const sizes: number[] = [];
    const seen: number[] = [];
    let next = 1;
    for (let round = 0; round < 100 && next <= h.sm.revision(); round++) {
      const page = h.sm.eventsSince(next, b("s/"), new Uint8Array([0x73, 0x30]), 1000, 350_000);
      sizes.push(page.events.length);
      seen.push(...page.events.map((e) => e.kv.modRevision));
      next = page.nextRevision;
    }
    assert.deepEqual(seen, Array.from({ length: 30 }, (_, i) => i + 1));
    assert.ok(Math.max(...sizes) <= 3, `pages of ${sizes.join(",")} events of 100 KB with a 350 KB bound`);
    // One event larger than the bound still comes alone rather than never.
    assert.equal(h.sm.eventsSince(1, b("s/"), new Uint8Array([0x73, 0x30]), 1000, 10).events.length, 1);
    assert.equal(h.sm.eventsSince(1, b("s/"), new Uint8Array([0x73, 0x30]), 1000).events.length, 30);
    h.close();
  });
});
