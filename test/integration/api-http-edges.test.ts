/**
 * The API app behind the runtime's own server (serveHttp: Bun.serve / Deno.serve / @hono/node-server), seen
 * on the wire through a raw TCP socket: what reaches the client when the runtime, not our code, writes
 * part of the answer. HEAD must carry the GET's Content-Length (Bun and Deno add `content-length: 0` to a
 * body-less answer that has none), and refusals decided before the body is read carry the JSON error
 * body. docs/api.md "Errors" lists what each runtime answers before our code sees the request.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { connect } from "node:net";
import { createApp } from "../../src/api/app.ts";
import { serveHttp, type HttpServerHandle } from "../../runtime-adapters/serve.ts";
import { currentRuntime } from "../../runtime-adapters/runtime.ts";
import { StubKvService } from "../unit/api-stub-service.ts";

const rt = currentRuntime();

/** One raw HTTP/1.1 exchange: writes `request`, collects bytes until the server closes, at most `ms`. */
function exchange(port: number, request: string, ms = 5000): Promise<string> {
  return new Promise((resolve) => {
    const chunks: string[] = [];
    const sock = connect(port, "127.0.0.1", () => sock.write(request));
    const done = () => {
      clearTimeout(timer);
      sock.destroy();
      resolve(chunks.join(""));
    };
    const timer = setTimeout(done, ms);
    sock.on("data", (d: Uint8Array) => chunks.push(new TextDecoder("latin1").decode(d)));
    sock.on("close", done);
    // A reset after the answer (the server closing a connection with unread input) is not a failure here.
    sock.on("error", done);
  });
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
});
