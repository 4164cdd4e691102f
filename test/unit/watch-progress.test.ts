/**
 * Watch progress (src/server/watch.ts `openWatch`): once a watch has replayed everything up to the store's
 * revision it says so at once with a `progress` message, rather than after a whole progress interval
 * (a new user waited ~5 s for it; docs/nemesis.md U4), and a watch that starts with nothing to replay gets
 * one at once too. Then progress follows each interval without events.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { WatchHub, openWatch } from "../../src/server/watch.ts";
import type { WatchMessage } from "../../src/api/service.ts";
import { Harness, b } from "./kv-helpers.ts";

/** The next message, or "none" when it did not come within `ms` (the watch is then parked on the hub). */
async function next(it: AsyncIterator<WatchMessage>, ms: number): Promise<WatchMessage | "none"> {
  let handle: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"none">((r) => (handle = setTimeout(() => r("none"), ms)));
  const got = await Promise.race([it.next().then((r) => (r.done ? ("none" as const) : r.value)), timeout]);
  clearTimeout(handle);
  return got;
}

describe("watch progress", () => {
  const stop = new AbortController();
  after(() => stop.abort());

  it("a progress at the store's revision follows the replay at once, not after the interval", async () => {
    const h = await Harness.open();
    h.ok({ op: "put", key: b("a"), value: b("1") });
    h.ok({ op: "put", key: b("a"), value: b("2") });
    h.ok({ op: "put", key: b("other"), value: b("x") });
    const hub = new WatchHub();
    const it = openWatch(h.sm, hub, { key: b("a"), fromRevision: 1, progressIntervalMs: 60_000 }, stop.signal, 60_000)[Symbol.asyncIterator]();
    const first = await next(it, 2000);
    assert.ok(first !== "none" && first.type === "events");
    assert.deepEqual(first.events.map((e) => e.kv.modRevision), [1, 2]);
    assert.deepEqual(await next(it, 2000), { type: "progress", revision: 3 });
    // Caught up and nothing new: the next progress waits for the (here 60 s) interval.
    assert.equal(await next(it, 300), "none");
  });

  it("a watch from a revision past the store says nothing until the store gets there, then progress at once", async () => {
    const h = await Harness.open();
    h.ok({ op: "put", key: b("k"), value: b("v") });
    const hub = new WatchHub();
    // A client that has everything up to 3 resumes on a member at revision 1 (catching up).
    const it = openWatch(h.sm, hub, { key: b("k"), fromRevision: 4, progressIntervalMs: 100 }, stop.signal, 100)[Symbol.asyncIterator]();
    assert.equal(await next(it, 400), "none", "a progress at 1 would move the client's resume point back");
    h.ok({ op: "put", key: b("other"), value: b("x") });
    h.ok({ op: "put", key: b("other"), value: b("y") });
    hub.notify();
    assert.deepEqual(await next(it, 2000), { type: "progress", revision: 3 });
    h.ok({ op: "put", key: b("k"), value: b("w") });
    hub.notify();
    const ev = await next(it, 2000);
    assert.ok(ev !== "none" && ev.type === "events");
    assert.deepEqual(ev.events.map((e) => e.kv.modRevision), [4]);
  });

  it("a watch from now gets a progress at once", async () => {
    const h = await Harness.open();
    h.ok({ op: "put", key: b("k"), value: b("v") });
    const it = openWatch(h.sm, new WatchHub(), { key: b("k"), progressIntervalMs: 60_000 }, stop.signal, 60_000)[Symbol.asyncIterator]();
    assert.deepEqual(await next(it, 2000), { type: "progress", revision: 1 });
  });
});
