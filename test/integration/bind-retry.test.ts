/**
 * runtime-adapters/shared/bind-retry.ts: a listen port refused with "address in use" while nothing listens
 * on it (held by an outgoing connection's ephemeral port, or its TIME_WAIT, after a quick restart) is
 * retried with bounded backoff; a port another server listens on fails at once.
 */
import net from "node:net";
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { acceptsConnections, bindWithRetry, isAddrInUse } from "../../runtime-adapters/shared/bind-retry.ts";
import { serveHttp } from "../../runtime-adapters/serve.ts";
import { currentRuntime } from "../../runtime-adapters/runtime.ts";
import type { PeerTransport } from "../../src/server/transport.ts";

const inUse = () => Object.assign(new Error("Address already in use (os error 98)"), { code: "EADDRINUSE" });

function listen(): Promise<net.Server> {
  return new Promise((resolve) => {
    const s = net.createServer((c) => c.destroy());
    s.listen(0, "127.0.0.1", () => resolve(s));
  });
}
const portOf = (s: net.Server) => (s.address() as net.AddressInfo).port;
const closeServer = (s: net.Server) => new Promise<void>((r) => s.close(() => r()));

describe("bindWithRetry", () => {
  it("retries an in-use port nothing listens on with growing delays, logging each retry, then returns the bound value", async () => {
    let calls = 0;
    const slept: number[] = [];
    const logs: string[] = [];
    const v = await bindWithRetry(
      async () => {
        if (++calls < 4) throw inUse();
        return "bound";
      },
      { what: "peer port", host: "127.0.0.1", port: 45705, log: (m) => logs.push(m), probe: async () => false, sleepMs: async (ms) => void slept.push(ms) },
    );
    assert.equal(v, "bound");
    assert.equal(calls, 4);
    assert.deepEqual(slept, [100, 200, 400]);
    assert.equal(logs.length, 3);
    assert.match(logs[0], /^peer port 127\.0\.0\.1:45705 is in use but nothing listens on it .*retrying in 100 ms/);
  });

  it("gives up with the last error once maxWaitMs is spent", async () => {
    let calls = 0;
    const slept: number[] = [];
    await assert.rejects(
      bindWithRetry(
        async () => {
          calls++;
          throw inUse();
        },
        { what: "client port", host: "::", port: 8080, maxWaitMs: 1000, log: () => {}, probe: async () => false, sleepMs: async (ms) => void slept.push(ms) },
      ),
      (e) => isAddrInUse(e),
    );
    assert.deepEqual(slept, [100, 200, 400, 300]); // capped so the total is exactly 1000 ms
    assert.equal(calls, 5);
  });

  it("fails at once when something accepts connections on the port, for other errors, and for port 0", async () => {
    const cases: Array<[Error, number, boolean]> = [
      [inUse(), 45705, true], // another server owns it
      [new Error("permission denied"), 80, false],
      [inUse(), 0, false],
    ];
    for (const [err, port, listening] of cases) {
      let calls = 0;
      await assert.rejects(
        bindWithRetry(
          async () => {
            calls++;
            throw err;
          },
          { what: "peer port", host: "127.0.0.1", port, log: () => assert.fail("no retry expected"), probe: async () => listening, sleepMs: async () => assert.fail("no sleep expected") },
        ),
        (e) => e === err,
      );
      assert.equal(calls, 1);
    }
  });

  it("recognises Node/Bun's EADDRINUSE code and Deno's AddrInUse error name", () => {
    assert.equal(isAddrInUse(inUse()), true);
    assert.equal(isAddrInUse(Object.assign(new Error("x"), { name: "AddrInUse" })), true);
    assert.equal(isAddrInUse(new Error("EADDRINUSE")), false);
    assert.equal(isAddrInUse(undefined), false);
  });

  it("acceptsConnections probes a real port: true while a server listens, false after it closed", async () => {
    const s = await listen();
    const port = portOf(s);
    assert.equal(await acceptsConnections("127.0.0.1", port), true);
    assert.equal(await acceptsConnections("0.0.0.0", port), true); // a wildcard listen address is probed on loopback
    await closeServer(s);
    assert.equal(await acceptsConnections("127.0.0.1", port), false);
  });

  it("serveHttp on a port another server listens on rejects with the runtime's address-in-use error, without retrying", async () => {
    const s = await listen();
    const logs: string[] = [];
    try {
      await assert.rejects(serveHttp({ host: "127.0.0.1", port: portOf(s), fetch: () => new Response("x"), log: (m) => logs.push(m) }), (e) => isAddrInUse(e));
      assert.deepEqual(logs, []);
    } finally {
      await closeServer(s);
    }
  });
});

/**
 * Makes a port that is "in use" with nothing listening: the ephemeral source port of an outgoing connection
 * (opened without SO_REUSEADDR, like any client's), as after a restart. `free()` lets the peer close first,
 * so our side closes passively (no TIME_WAIT) and the port becomes bindable.
 */
async function heldEphemeralPort(): Promise<{ port: number; free: () => void; close: () => Promise<void> }> {
  const accepted: net.Socket[] = [];
  const server = net.createServer((c) => void accepted.push(c.on("error", () => {})));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const client = net.connect({ host: "127.0.0.1", port: portOf(server) });
  client.on("error", () => {});
  await new Promise<void>((r) => client.once("connect", () => r()));
  const free = () => {
    for (const c of accepted) c.destroy();
  };
  return { port: client.localPort!, free, close: async () => (free(), client.destroy(), await closeServer(server)) };
}

describe("quick restart on a port held by a closing connection", () => {
  it("this runtime's peer transport waits for the port instead of failing, logging why", async () => {
    const held = await heldEphemeralPort();
    const rt = currentRuntime();
    const mod = rt === "bun" ? await import("../../runtime-adapters/bun/peer-transport.ts") : rt === "deno" ? await import("../../runtime-adapters/deno/peer-transport.ts") : await import("../../runtime-adapters/node/peer-transport.ts");
    const logs: string[] = [];
    const t: PeerTransport = mod.createPeerTransport({ nodeId: "a", clusterId: "c1", clusterSecret: "test-secret-0123456789", host: "127.0.0.1", port: held.port, heartbeatIntervalMs: 1000, log: (_level, m) => void logs.push(m) });
    const timer = setTimeout(held.free, 300);
    try {
      const { url } = await t.listen();
      assert.equal(url, `http://127.0.0.1:${held.port}`);
      assert.ok(logs.some((m) => m.startsWith(`peer port 127.0.0.1:${held.port} is in use but nothing listens on it`)), logs.join("\n"));
    } finally {
      clearTimeout(timer);
      await t.close();
      await held.close();
    }
  });

  it("serveHttp (the client port) does the same", async () => {
    const held = await heldEphemeralPort();
    const logs: string[] = [];
    const timer = setTimeout(held.free, 300);
    let server: Awaited<ReturnType<typeof serveHttp>> | undefined;
    try {
      server = await serveHttp({ host: "127.0.0.1", port: held.port, fetch: () => new Response("served"), log: (m) => logs.push(m) });
      assert.equal(await (await fetch(`${server.url}/`)).text(), "served");
      assert.ok(logs.some((m) => m.startsWith(`client port 127.0.0.1:${held.port} is in use`)), logs.join("\n"));
    } finally {
      clearTimeout(timer);
      await server?.close();
      await held.close();
    }
  });
});
