/**
 * The SDK's txn refuses input it would otherwise reshape (user trial u1, items 1, 2, 4): a non-text put
 * value, unknown top-level or op fields, missing fields and null all throw BadRequestError (bad_request,
 * status 0) before any request is sent, and nothing is stored.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createApp } from "../../src/api/app.ts";
import { BadRequestError, EdgeKvClient, text, validateTxnRequest, type TxnRequest } from "../../src/client/index.ts";
import { StubKvService } from "./api-stub-service.ts";

function setup() {
  const app = createApp(new StubKvService());
  let sent = 0;
  const client = new EdgeKvClient({
    endpoints: ["http://n1.test"],
    fetch: async (input, init) => {
      sent++;
      return app.request(String(input), init);
    },
    random: () => 0,
  });
  return { client, sent: () => sent };
}

/** Asserts `req` is refused with bad_request, status 0, a message containing `fragment`, and no request left. */
async function refused(req: unknown, fragment: string): Promise<void> {
  const { client, sent } = setup();
  await assert.rejects(client.txn(req as TxnRequest), (e: unknown) => {
    assert.ok(e instanceof BadRequestError, `not a BadRequestError: ${String(e)}`);
    assert.equal(e.code, "bad_request");
    assert.equal(e.status, 0);
    assert.ok(e.message.includes(fragment), `message ${JSON.stringify(e.message)} lacks ${JSON.stringify(fragment)}`);
    return true;
  });
  assert.equal(sent(), 0);
  assert.equal(await client.get("k"), null);
}

describe("client: txn input validation", () => {
  it("refuses a number as a value compare's value (it was sent as its decimal text and matched \"5\")", async () => {
    await refused({ compare: [{ key: "k", target: "value", result: "=", value: 5 }], success: [] }, "compare[0].value must be a string or Uint8Array, got");
  });

  it("refuses a put value that is a number, boolean, object or null, naming the allowed types", async () => {
    for (const value of [5, true, { a: 1 }, null, [1]]) await refused({ success: [{ op: "put", key: "k", value }] }, "string or Uint8Array");
  });

  it("a plain put refuses the same values (it stored null as \"\", 5 as \"5\", an object as \"[object Object]\"), on either key path", async () => {
    for (const key of ["k", ".."]) {
      for (const value of [5, true, { a: 1 }, null, undefined, [1]]) {
        const { client, sent } = setup();
        await assert.rejects(client.put(key, value as unknown as string), (e: unknown) => {
          assert.ok(e instanceof BadRequestError, `not a BadRequestError: ${String(e)}`);
          assert.equal(e.code, "bad_request");
          assert.equal(e.status, 0);
          assert.match(e.message, /put: value must be a string or Uint8Array, got /);
          return true;
        });
        assert.equal(sent(), 0, `${key} ${String(value)}: nothing sent`);
      }
    }
    const { client } = setup();
    await client.put("k", "text");
    await client.put("b", new Uint8Array([0, 255]));
    assert.equal(text((await client.get("k"))!.value), "text");
    assert.deepEqual([...(await client.get("b"))!.value], [0, 255]);
  });

  it("refuses unknown top-level fields (a typo would otherwise run an empty txn)", async () => {
    await refused({ sucess: [{ op: "put", key: "k", value: "v" }] }, '"sucess"');
  });

  it("refuses unknown op and compare fields", async () => {
    await refused({ success: [{ op: "put", key: "k", value: "v", prevkv: true }] }, '"prevkv"');
    await refused({ compare: [{ key: "k", target: "version", result: "=", value: 0, extra: 1 }] }, '"extra"');
  });

  it("refuses null, a non-object, missing fields and a wrong op with a clear message", async () => {
    await refused(null, "must be an object");
    await refused(undefined, "must be an object");
    await refused([], "must be an object");
    await refused({ success: {} }, "success must be an array");
    await refused({ success: [null] }, "success[0] must be an object");
    await refused({ success: [{ op: "put", key: "k" }] }, "success[0].value is missing");
    await refused({ success: [{ op: "put", value: "v" }] }, "success[0].key must be a string");
    await refused({ success: [{ key: "k", value: "v" }] }, "success[0].op must be");
    await refused({ failure: [{ op: "toString", key: "k" }] }, "failure[0].op must be");
    await refused({ compare: [{ key: "k", target: "version", result: "=" }] }, "compare[0].value");
    await refused({ compare: [{ key: "k", target: "size", result: "=", value: 1 }] }, "compare[0].target");
  });

  it("still runs valid txns, text and bytes values stored exactly", async () => {
    const { client } = setup();
    const r = await client.txn({ compare: [{ key: "k", target: "version", result: "=", value: 0 }], success: [{ op: "put", key: "k", value: "5" }, { op: "put", key: "b", value: new Uint8Array([0, 255]) }] });
    assert.equal(r.succeeded, true);
    assert.equal(text((await client.get("k"))!.value), "5");
    assert.deepEqual([...(await client.get("b"))!.value], [0, 255]);
    assert.deepEqual(validateTxnRequest({}), {});
  });
});
