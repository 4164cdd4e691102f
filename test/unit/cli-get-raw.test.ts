/**
 * `edgekv get KEY --raw` writes the value's bytes exactly (no newline, no UTF-8 decoding), in-process and
 * through a real process of the running runtime against a served API (user trial u1, item 3).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { currentRuntime } from "../../runtime-adapters/runtime.ts";
import { inProcessCli, servedCli } from "../helpers/cli.ts";

/** Not valid UTF-8, ends without a newline: text output would change it. */
const BINARY = new Uint8Array([0, 255, 10, 0xc3, 0x28, 13, 0x80]);

describe("cli: get --raw in-process", () => {
  const cli = inProcessCli();
  /** Runs the CLI with `stdin`; `bytes` = what it wrote through writeBytes. */
  const run = async (argv: string[], stdin: Uint8Array) => {
    cli.setStdin(stdin);
    const r = await cli.run(...argv);
    return { ...r, bytes: cli.lastBytes() };
  };

  it("writes the stored bytes exactly and nothing else", async () => {
    assert.equal((await run(["put", "bin", "-"], BINARY)).code, 0);
    assert.deepEqual(await run(["get", "bin", "--raw"], new Uint8Array(0)), { code: 0, out: [], err: [], bytes: [...BINARY] });
  });

  it("--raw with --json is a usage error; an absent key is not_found (exit 1)", async () => {
    const both = await run(["get", "bin", "--raw", "--json"], new Uint8Array(0));
    assert.equal(both.code, 2);
    assert.match(both.err[0], /--raw and --json/);
    const absent = await run(["get", "nope", "--raw"], new Uint8Array(0));
    assert.deepEqual([absent.code, absent.bytes], [1, []]);
    assert.match(absent.err[0], /^error: not_found/);
  });

  it("--help shows --raw", async () => {
    const h = await run(["get", "--help"], new Uint8Array(0));
    assert.match(h.out.join("\n"), /--raw/);
  });
});

describe(`cli: get --raw in a real process on ${currentRuntime()}`, () => {
  const cli = servedCli();

  it("stdout holds exactly the stored bytes", async () => {
    const put = await fetch(`${cli.url()}/v1/kv/bin`, { method: "PUT", body: BINARY, headers: { "content-type": "application/octet-stream" } });
    assert.ok(put.ok, `put: ${put.status}`);
    const r = await cli.run(["get", "bin", "--raw"]);
    assert.deepEqual([r.code, r.stderr, [...r.stdout]], [0, "", [...BINARY]]);
  });
});
