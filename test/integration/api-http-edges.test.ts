/**
 * The API app behind the runtime's own server (serveHttp: Bun.serve / Deno.serve / @hono/node-server), seen
 * on the wire through a raw TCP socket: what reaches the client when the runtime, not our code, writes
 * part of the answer. HEAD must carry the GET's Content-Length (Bun and Deno add `content-length: 0` to a
 * body-less answer that has none); a 413 decided from Content-Length alone carries the JSON error body on
 * every runtime (Bun answered bodies over 128 MiB itself, with an empty body); requests Node's parser
 * refuses (431, 400, 408) get the JSON body too. Bun and Deno answer oversized headers themselves with no
 * hook for us: those tests pin their status only. docs/api.md "Errors" lists what each runtime answers
 * before our code sees the request.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { connect } from "node:net";
import { createApp } from "../../src/api/app.ts";
import { serveHttp, type HttpServerHandle } from "../../runtime-adapters/serve.ts";
import { currentRuntime } from "../../runtime-adapters/runtime.ts";
import { StubKvService } from "../unit/api-stub-service.ts";

const rt = currentRuntime();

/**
 * One raw HTTP/1.1 exchange: writes `request`, collects bytes until the server closes or, with `untilAnswered`,
 * until one whole answer with a body arrived (Deno keeps the connection of a 413 open while the declared
 * body is unsent), at most `ms`.
 */
function exchange(port: number, request: string, ms = 5000, untilAnswered = false): Promise<string> {
  return new Promise((resolve) => {
    const chunks: string[] = [];
    const sock = connect(port, "127.0.0.1", () => sock.write(request));
    const done = () => {
      clearTimeout(timer);
      sock.destroy();
      resolve(chunks.join(""));
    };
    const timer = setTimeout(done, ms);
    sock.on("data", (d: Uint8Array) => {
      chunks.push(new TextDecoder("latin1").decode(d));
      if (untilAnswered && answered(chunks.join(""))) done();
    });
    sock.on("close", done);
    // A reset after the answer (the server closing a connection with unread input) is not a failure here.
    sock.on("error", done);
  });
}

/** True when `raw` holds one answer's headers and its whole body (by Content-Length or the last chunk). */
function answered(raw: string): boolean {
  const end = raw.indexOf("\r\n\r\n");
  if (end < 0) return false;
  const length = /\r\ncontent-length: *([0-9]+)/i.exec(raw.slice(0, end + 2));
  if (length) return raw.length - end - 4 >= Number(length[1]);
  return raw.includes("\r\n0\r\n\r\n", end);
}

/** Status, lower-cased header map and body text of one raw answer (chunked bodies are de-chunked). */
function parse(raw: string): { status: number; headers: Record<string, string>; body: string } {
  const end = raw.indexOf("\r\n\r\n");
  assert.ok(end > 0, `no complete answer: ${JSON.stringify(raw.slice(0, 200))}`);
  const [statusLine, ...lines] = raw.slice(0, end).split("\r\n");
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(":");
    headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  let body = raw.slice(end + 4);
  if (headers["transfer-encoding"] === "chunked") {
    let out = "";
    for (;;) {
      const nl = body.indexOf("\r\n");
      const size = parseInt(body.slice(0, nl), 16);
      if (!(size > 0)) break;
      out += body.slice(nl + 2, nl + 2 + size);
      body = body.slice(nl + 2 + size + 2);
    }
    body = out;
  }
  return { status: Number(statusLine.split(" ")[1]), headers, body };
}

describe(`API over the ${rt} server: what the client receives`, () => {
  let server: HttpServerHandle;
  let port = 0;
  const service = new StubKvService();
  before(async () => {
    server = await serveHttp({ host: "127.0.0.1", port: 0, closeGraceMs: 100, fetch: createApp(service, { maxValueBytes: 1024 }).fetch });
    port = Number(new URL(server.url).port);
    const put = await fetch(`${server.url}/v1/kv/k`, { method: "PUT", body: "hello world" });
    assert.equal(put.status, 200);
  });
  after(() => server.close());

  it("HEAD of a key: 200, the GET's ETag and revision headers, Content-Length 11 (the value's), no body", async () => {
    const r = parse(await exchange(port, "HEAD /v1/kv/k HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"));
    assert.equal(r.status, 200);
    assert.equal(r.headers["content-length"], "11");
    assert.equal(r.headers.etag, '"1"');
    assert.equal(r.headers["x-mod-revision"], "1");
    assert.equal(r.headers["x-revision"], "1");
    assert.equal(r.body, "");
  });

  it("HEAD of an absent key: 404 with the length of the GET's JSON error body", async () => {
    const get = parse(await exchange(port, "GET /v1/kv/none HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"));
    const head = parse(await exchange(port, "HEAD /v1/kv/none HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"));
    assert.equal(get.status, 404);
    assert.equal(head.status, 404);
    assert.equal(head.headers["content-length"], String(new TextEncoder().encode(get.body).byteLength));
    assert.equal(head.body, "");
  });

  it("a HEAD then a GET on one keep-alive connection: the GET's answer is intact", async () => {
    const raw = await exchange(port, "HEAD /v1/kv/k HTTP/1.1\r\nHost: t\r\n\r\nGET /v1/kv/k HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    const second = raw.indexOf("HTTP/1.1", 1);
    assert.ok(second > 0, raw);
    assert.equal(parse(raw.slice(second)).body, "hello world");
  });

  it("a body declared above the limit is 413 payload_too_large with the JSON error body, before any byte of it is sent", async () => {
    // 200 MB: above Bun's own default maxRequestBodySize (128 MiB), which answered with an empty 413.
    for (const [path, limit] of [["/v1/kv/big", 1024], ["/v1/txn", 1536 * 1024]] as const) {
      const raw = await exchange(port, `${path.endsWith("txn") ? "POST" : "PUT"} ${path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 200000000\r\nConnection: close\r\n\r\n`, 5000, true);
      const r = parse(raw);
      assert.equal(r.status, 413, raw.slice(0, 200));
      assert.match(r.headers["content-type"] ?? "", /^application\/json/);
      assert.deepEqual(JSON.parse(r.body), { error: { code: "payload_too_large", message: `body of 200000000 bytes is above the limit of ${limit}` } });
    }
  });

  // Request headers above the runtime's limit never reach our code. Node lets us write the answer (its
  // clientError event): 431 with the JSON body. Bun answers 431 itself (empty body, no hook); Deno lets
  // about 64 KiB through and answers 400 itself above that (empty body, no hook). docs/api.md "Errors".
  it("request headers above the runtime's limit: 431 headers_too_large with the JSON body on Node, the runtime's own answer on Bun and Deno", async () => {
    const big = (n: number) => `GET /v1/kv/k HTTP/1.1\r\nHost: t\r\nX-Big: ${"a".repeat(n)}\r\nConnection: close\r\n\r\n`;
    const at20k = parse(await exchange(port, big(20 * 1024)));
    const at80k = parse(await exchange(port, big(80 * 1024)));
    if (rt === "node") {
      assert.equal(at20k.status, 431);
      assert.equal(at20k.headers["content-type"], "application/json");
      assert.equal(at20k.headers.connection, "close");
      assert.equal(JSON.parse(at20k.body).error.code, "headers_too_large");
      assert.equal(at20k.headers["content-length"], String(at20k.body.length));
      assert.equal(JSON.parse(at80k.body).error.code, "headers_too_large");
    } else if (rt === "bun") {
      assert.deepEqual([at20k.status, at80k.status], [431, 431]);
    } else {
      assert.deepEqual([at20k.status, at20k.body], [200, "hello world"], "Deno passes 20 KiB of headers to the app");
      assert.equal(at80k.status, 400);
    }
  });

  it("a malformed request line is 400 bad_request with the JSON body on Node", { skip: rt !== "node" ? "Bun and Deno answer malformed requests themselves (no hook)" : false }, async () => {
    const r = parse(await exchange(port, "NOT HTTP AT ALL\r\n\r\n"));
    assert.equal(r.status, 400);
    assert.equal(JSON.parse(r.body).error.code, "bad_request");
  });

  it("headers not finished in time are 408 request_timeout with the JSON body on Node", { skip: rt !== "node" ? "Node only: headersTimeoutMs (serve.test.ts)" : false }, async () => {
    const slow = await serveHttp({ host: "127.0.0.1", port: 0, headersTimeoutMs: 500, closeGraceMs: 100, fetch: () => new Response("ok") });
    try {
      // Bounded: Node checks every 500 ms here; the answer comes well within 10 s or the exchange ends empty.
      const raw = await exchange(Number(new URL(slow.url).port), "GET / HTTP/1.1\r\nHost: t\r\nX-Slow: ", 10_000);
      const r = parse(raw);
      assert.equal(r.status, 408);
      assert.equal(JSON.parse(r.body).error.code, "request_timeout");
    } finally {
      await slow.close();
    }
  });
});
