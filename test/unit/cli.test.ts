/**
 * The `edgekv` CLI: commands run in-process through `runCli` against the API app over the STUB service
 * (injected fetch, no network), output and exit codes asserted; `put KEY -` and `--file` in-process and
 * as a real process of the running runtime with a real stdin pipe, against the API served on 127.0.0.1;
 * plus one child-process smoke test of `bin/edgekv.mjs --help` under Node (the tsx launcher path).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { currentRuntime } from "../../runtime-adapters/runtime.ts";
import { runCli } from "../../src/cli/main.ts";
import { inProcessCli, servedCli } from "../helpers/cli.ts";

/** A fresh in-process CLI over a new stub service (test/helpers/cli.ts). */
const setup = () => inProcessCli();

describe("cli: commands", () => {
  it("put, get, range and del with human output", async () => {
    const { run } = setup();
    assert.deepEqual(await run("put", "app/a", "hello"), { code: 0, out: ["OK revision 1"], err: [] });
    await run("put", "app/b", "world");
    assert.deepEqual((await run("get", "app/a")).out, ["hello"]);
    assert.deepEqual((await run("range", "--prefix", "app/")).out, ["app/a = hello", "app/b = world"]);
    assert.deepEqual((await run("range", "--start", "app/a", "--end", "app/b", "--keys-only")).out, ["app/a"]);
    assert.deepEqual((await run("range", "--prefix", "app/", "--count-only")).out, ["2"]);
    assert.deepEqual((await run("range", "--prefix", "app/", "--limit", "1")).out, ["app/a = hello", "... 1 more"]);
    assert.deepEqual((await run("del", "--prefix", "app/")).out, ["deleted 2 (revision 3)"]);
  });

  it("prints machine output with --json", async () => {
    const { run } = setup();
    await run("put", "k", "v");
    const r = await run("get", "k", "--json");
    assert.deepEqual(JSON.parse(r.out[0]), { key: "k", value: btoa("v"), createRevision: 1, modRevision: 1, version: 1, lease: "0", revision: 1 });
  });

  it("exits 1 with the error code for a missing key or unknown lease, 3 for a failed condition", async () => {
    const { run } = setup();
    assert.deepEqual(await run("get", "nope"), { code: 1, out: [], err: ['error: not_found: key "nope" not found'] });
    const l = await run("put", "k", "v", "--lease", "123456");
    assert.equal(l.code, 1);
    assert.match(l.err[0], /^error: lease_not_found: /);
    await run("put", "k", "v");
    const c = await run("put", "k", "w", "--if-absent");
    assert.equal(c.code, 3);
    assert.match(c.err[0], /^error: compare_failed: /);
    assert.equal((await run("put", "k", "w", "--if-match", "1")).code, 0);
  });

  it("exits 2 on usage errors", async () => {
    const { run } = setup();
    for (const argv of [["get"], ["put", "k"], ["frobnicate"], ["range"], ["range", "--prefix", "a", "--start", "b"], ["get", "k", "--bogus"], ["lease", "grant", "ten"], ["get", "k", "--consistency", "eventual"]]) {
      const r = await run(...argv);
      assert.deepEqual([argv.join(" "), r.code], [argv.join(" "), 2]);
      assert.match(r.err[0], /^error: usage/);
    }
  });

  it("answers etcdctl habits with the edgekv command, and checks --lease, --from-revision and --timeout-ms itself (exit 2)", async () => {
    // New-user trial U7: these got a bare usage line, "unknown command", or the server's bad_request (exit 1).
    const { run } = setup();
    await run("put", "greet/a", "hi");
    for (const argv of [["get", "--prefix", "greet/"], ["get", "greet/a", "--prefix", "greet/"], ["get", "--start", "a"]]) {
      const r = await run(...argv);
      assert.equal(r.code, 2, argv.join(" "));
      assert.match(r.err.join("\n"), /get reads one key; to list a prefix .*edgekv range --prefix P/, argv.join(" "));
    }
    const dangling = await run("get", "greet", "--prefix");
    assert.equal(dangling.code, 2);
    assert.match(dangling.err.join("\n"), /to list a prefix use `edgekv range --prefix P`/);
    const member = await run("member", "list");
    assert.equal(member.code, 2);
    assert.match(member.err[0], /unknown command "member" \(etcdctl's member: here `edgekv members/);
    assert.match((await run("endpoint", "status")).err[0], /here `edgekv status`/);
    const keepAlive = await run("lease", "keep-alive", "123");
    assert.equal(keepAlive.code, 2);
    assert.match(keepAlive.err[0], /`edgekv lease keepalive ID` here/);
    for (const [argv, re] of [
      [["put", "k", "v", "--lease", "abc"], /--lease must be a positive decimal integer \(a lease id\), got "abc"/],
      [["watch", "k", "--from-revision", "0", "--count", "1"], /--from-revision must be at least 1, got "0"/],
      [["--timeout-ms", "0", "get", "greet/a"], /--timeout-ms must be at least 1, got "0"/],
      [["--timeout-ms", "99999999999999", "get", "greet/a"], /--timeout-ms must be at most 2147483647 \(about 24.8 days\), got "99999999999999"/],
    ] as const) {
      const r = await run(...argv);
      assert.deepEqual([argv.join(" "), r.code], [argv.join(" "), 2]);
      assert.match(r.err[0], re);
    }
    assert.equal((await run("get", "k")).code, 1, "nothing was written by the refused put");
    assert.deepEqual((await run("delete", "greet/a")).out, ["deleted 1 (revision 2)"], "delete is del");
    assert.equal((await run("get", "greet/a")).code, 1);
  });

  it("refuses a missing txn file, a bad lease TTL and --if-match with --if-absent as usage errors naming the argument", async () => {
    const { run, service } = setup();
    const missing = await run("txn", "/nonexistent.json");
    assert.equal(missing.code, 2);
    assert.match(missing.err[0], /^error: usage: cannot read \/nonexistent\.json: ENOENT/);
    const ttl = await run("lease", "grant", "abc");
    assert.equal(ttl.code, 2);
    assert.match(ttl.err[0], /TTL_SECONDS must be a non-negative integer, got "abc"/);
    assert.doesNotMatch(ttl.err[0], /--ttl/);
    // A zero TTL is refused before anything is sent (it went to the node and came back as exit 1).
    const zero = await run("lease", "grant", "0");
    assert.deepEqual([zero.code, zero.err[0]], [2, "error: usage: TTL_SECONDS must be at least 1, got 0"]);
    // compact's revision is the positional REVISION, not a --revision flag.
    const compact = await run("compact", "abc");
    assert.equal(compact.code, 2);
    assert.match(compact.err[0], /REVISION must be a non-negative integer, got "abc"/);
    assert.doesNotMatch(compact.err[0], /--revision/);
    // Revision 0 is refused before anything is sent, as a usage error (it came back from the node as exit 1).
    const zeroRev = await run("compact", "0");
    assert.deepEqual([zeroRev.code, zeroRev.err[0]], [2, 'error: usage: REVISION must be at least 1, got "0"']);
    const both = await run("put", "k", "v", "--if-match", "1", "--if-absent");
    assert.deepEqual([both.code, both.err[0]], [2, "error: usage: --if-match and --if-absent are mutually exclusive"]);
    assert.equal((await run("get", "k")).code, 1, "nothing was written");
    assert.ok(service);
  });

  it("puts, gets and deletes the keys '.' and '..'", async () => {
    const { run } = setup();
    assert.deepEqual((await run("put", "..", "dots")).out, ["OK revision 1"]);
    assert.deepEqual((await run("put", ".", "dot")).out, ["OK revision 2"]);
    assert.deepEqual([(await run("get", "..")).out, (await run("get", ".")).out], [["dots"], ["dot"]]);
    assert.equal((await run("del", "..")).code, 0);
    assert.equal((await run("get", "..")).code, 1);
  });

  it("takes a negative number where a positional belongs, and names the argument or flag it was given to", async () => {
    const { run } = setup();
    // A positional: the command's own check names it (it was "numbers must be non-negative integers").
    const r = await run("lease", "grant", "-5");
    assert.deepEqual([r.code, r.err[0]], [2, 'error: usage: TTL_SECONDS must be a non-negative integer, got "-5"']);
    const compact = await run("compact", "-3");
    assert.deepEqual([compact.code, compact.err[0]], [2, 'error: usage: REVISION must be a non-negative integer, got "-3"']);
    // A negative number is a fine key or value: stored as typed, beside options in any order.
    assert.deepEqual((await run("put", "k", "-3", "--json")).code, 0);
    assert.deepEqual((await run("put", "-7", "-1.5")).out, ["OK revision 2"]);
    assert.deepEqual([(await run("get", "k")).out, (await run("get", "-7")).out], [["-3"], ["-1.5"]]);
    // After a numeric flag: the flag is named.
    const f = await run("get", "k", "--revision", "-1");
    assert.deepEqual([f.code, f.err[0]], [2, 'error: usage: --revision must be a non-negative integer, got "-1"']);
    // After any other flag that takes a value, parseArgs's message, which shows the `--prefix=-1` form.
    const p = await run("range", "--prefix", "-1");
    assert.equal(p.code, 2);
    assert.match(p.err.join("\n"), /--prefix=-XYZ/);
    assert.deepEqual((await run("range", "--prefix=-", "--keys-only")).out, ["-7"]);
  });

  it("refuses, without sending anything, a flag its command does not read and a condition on a range delete (breaker B10)", async () => {
    const { run, service } = setup();
    await run("put", "p/a", "1");
    await run("put", "p/b", "2");
    const calls = service.calls.length;
    // --if-match on a range delete was ignored: every key under the prefix went, exit 0.
    const cond = await run("del", "--prefix", "p/", "--if-match", "1");
    assert.deepEqual([cond.code, cond.err[0]], [2, "error: usage: --if-match applies to one KEY, not a range; for a conditional range delete use `edgekv txn` with a compare"]);
    assert.equal((await run("del", "--start", "p/", "--end", "p/z", "--if-match", "1")).code, 2);
    // A flag of another command was ignored and the command ran (a delete, a compaction, a write).
    const extra = await run("del", "--prefix", "p/", "--count-only");
    assert.deepEqual([extra.code, extra.err[0]], [2, "error: usage: --count-only does not apply to del; its flags: --if-match, --prefix, --start, --end (and --endpoints, --json, --timeout-ms)"]);
    const compact = await run("compact", "1", "--revision", "5");
    assert.deepEqual([compact.code, compact.err[0]], [2, "error: usage: --revision does not apply to compact; it takes no flags (and --endpoints, --json, --timeout-ms)"]);
    assert.equal((await run("put", "q", "v", "--revision", "3")).code, 2);
    assert.equal((await run("status", "--limit", "1")).code, 2);
    assert.deepEqual((await run("lease", "grant", "5", "--keys")).err, ["error: usage: --keys applies to lease ttl only"]);
    assert.deepEqual(service.calls.slice(calls).map((c) => c.method), [], "a refused command reached the service");
    assert.deepEqual((await run("range", "--prefix", "", "--keys-only")).out, ["p/a", "p/b"], "nothing was deleted or written");
    const before = service.calls.length;
    // Numbers out of range are usage errors here, not the server's bad_request (exit 1).
    assert.deepEqual((await run("put", "k", "v", "--lease", "9223372036854775808")).err, ['error: usage: --lease is above 2^63-1, the largest lease id, got "9223372036854775808"']);
    assert.deepEqual((await run("lease", "ttl", "99999999999999999999")).code, 2);
    assert.deepEqual((await run("lease", "grant", "2147483648")).err, ["error: usage: TTL_SECONDS must be at most 2147483647, got 2147483648"]);
    assert.deepEqual((await run("compact", "99999999999999999999")).err, ['error: usage: REVISION has more than 15 digits, got "99999999999999999999"']);
    // What the SDK refuses before sending (status 0) is a usage error too.
    assert.deepEqual(await run("put", "", "v"), { code: 2, out: [], err: ["error: usage: key must not be empty"] });
    assert.equal((await run("range", "--start", "b", "--end", "a")).code, 2);
    assert.deepEqual(service.calls.slice(before).map((c) => c.method), [], "a refused command reached the service");
    // Messages name the real mistake: the unknown flag, not a negative number after "--"; get's hint only for get.
    const bogus = await run("put", "k22", "v", "--bogus", "--", "--limit", "-5");
    assert.match(bogus.err[0], /^error: usage: Unknown option '--bogus'/);
    assert.equal((await run("range", "get", "--prefix")).err.some((l) => l.startsWith("get reads one key")), false);
    assert.equal((await run("get", "--prefix")).err.some((l) => l.startsWith("get reads one key")), true);
    const lease = await run("get", "k", "--lease", "-5");
    assert.equal(lease.err[0], 'error: usage: --lease must be a positive decimal integer (a lease id), got "-5"');
    // Any negative number is a positional: -1e3, -.5.
    assert.equal((await run("put", "n", "-1e3")).code, 0);
    assert.equal((await run("put", "m", "-.5")).code, 0);
    assert.deepEqual([(await run("get", "n")).out, (await run("get", "m")).out], [["-1e3"], ["-.5"]]);
  });

  it("refuses bad member ids and empty keys before sending, and keeps get's range hint (breaker B11)", async () => {
    const { run, service } = setup();
    await run("put", "a", "1");
    const calls = service.calls.length;
    // These reached the node (exit 1): promote/remove/transfer-leader checked no id; `range ''` listed every key.
    // "." and ".." pass the character rule but a URL path drops them (the request reached another route).
    for (const argv of [["members", "promote", "bad id"], ["members", "remove", ""], ["members", "transfer-leader", "a/b"], ["members", "remove", ".."], ["members", "promote", "."]]) {
      const r = await run(...argv);
      assert.deepEqual([argv.join(" "), r.code, r.err[0]], [argv.join(" "), 2, `error: usage: member id ${JSON.stringify(argv[2])}: 1-64 letters, digits, '.', '_' or '-', not . or ..`]);
    }
    for (const argv of [["watch", ""], ["range", ""], ["del", ""]]) assert.deepEqual(await run(...argv), { code: 2, out: [], err: ["error: usage: key must not be empty"] });
    assert.deepEqual(service.calls.slice(calls).map((c) => c.method), [], "a refused command reached the service");
    // get with range flags points to range (the flag check said "--keys-only does not apply to get").
    for (const argv of [["get", "--prefix", "p", "--keys-only"], ["get", "--start", "a", "--end", "b"]]) assert.match((await run(...argv)).err[0], /get reads one key; to list a prefix or a range use `edgekv range/);
    assert.deepEqual((await run("lease", "foo", "x")).err, ["error: usage: edgekv lease grant TTL_SECONDS | keepalive ID [--once] | revoke ID | ttl ID [--keys]"]);
    assert.deepEqual((await run("lease", "ttl", "123456789012345678901")).err, ['error: usage: ID is above 2^63-1, the largest lease id, got "123456789012345678901"']);
    assert.deepEqual((await run("watch", "k", "--count", "1.5")).err, ['error: usage: --count must be an integer >= 1, got "1.5"']);
    // delete is del, also for --help; `help` and `help COMMAND` as in etcdctl; etcdctl names get a hint.
    const del = await run("delete", "--help");
    assert.equal(del.code, 0);
    assert.match(del.out[0], /^usage: edgekv del KEY/);
    const help = await run("help");
    assert.equal(help.code, 0);
    assert.match(help.out[0], /^usage: edgekv /);
    assert.match((await run("help", "put")).out[0], /^usage: edgekv put KEY/);
    assert.deepEqual((await run("help", "put", "get")).err, ["error: usage: edgekv help [COMMAND]"]);
    assert.deepEqual((await run("member", "--help")).err, ["error: usage: unknown command \"member\" (etcdctl's member: here `edgekv members [list | add | promote | remove]`); run `edgekv --help`"]);
  });

  it("status waits --timeout-ms for each endpoint, not a fixed 5 s (breaker B11)", async () => {
    // The node answers after 6 s: within --timeout-ms 20000, but past the old fixed 5 s deadline.
    const out: string[] = [];
    const err: string[] = [];
    const view = { clusterId: "c", selfId: "n1", leaderId: "n1", term: 2, commitIndex: 5, appliedIndex: 5, revision: 3, members: [] };
    const slow: typeof fetch = (_input, init) =>
      new Promise((resolve, reject) => {
        const t = setTimeout(() => resolve(new Response(JSON.stringify(view), { headers: { "content-type": "application/json" } })), 6000);
        init?.signal?.addEventListener("abort", () => {
          clearTimeout(t);
          reject(init.signal?.reason ?? new Error("aborted"));
        });
      });
    const code = await runCli(["--endpoints", "http://n1.test", "--timeout-ms", "20000", "status"], { out: (l) => out.push(l), err: (l) => err.push(l), env: {}, fetch: slow, readFile: async () => "", readFileBytes: async () => new Uint8Array(0), readStdin: async () => "", readStdinBytes: async () => new Uint8Array(0) });
    assert.deepEqual([code, out, err], [0, ["ENDPOINT\tID\tLEADER\tTERM\tCOMMIT\tAPPLIED\tREVISION", "http://n1.test\tn1\tn1\t2\t5\t5\t3"], []]);
  });

  it("names $EDGEKV_ENDPOINTS when that is where a bad endpoint list came from", async () => {
    const errs: string[] = [];
    const io = { out: () => {}, err: (l: string) => errs.push(l), env: { EDGEKV_ENDPOINTS: " " }, readFile: async () => "", readFileBytes: async () => new Uint8Array(0), readStdin: async () => "", readStdinBytes: async () => new Uint8Array(0) };
    assert.equal(await runCli(["get", "k"], io), 2);
    assert.equal(errs[0], "error: usage: $EDGEKV_ENDPOINTS: at least one endpoint is needed");
  });

  it("refuses a malformed --endpoints as a usage error", async () => {
    const errs: string[] = [];
    const r = await runCli(["--endpoints", "not a url", "get", "k"], { out: () => {}, err: (l) => errs.push(l), env: {}, readFile: async () => "", readFileBytes: async () => new Uint8Array(0), readStdin: async () => "", readStdinBytes: async () => new Uint8Array(0) });
    assert.deepEqual([r, errs[0]], [2, 'error: usage: --endpoints: endpoint "not a url" is not an http(s) URL']);
    // B9: an endpoint with /v1 made every get "key not found" (the server's 404 for /v1/v1/kv/...).
    const r2 = await runCli(["--endpoints", "http://127.0.0.1:9/v1", "get", "k"], { out: () => {}, err: (l) => errs.push(l), env: {}, readFile: async () => "", readFileBytes: async () => new Uint8Array(0), readStdin: async () => "", readStdinBytes: async () => new Uint8Array(0) });
    assert.deepEqual([r2, errs[1]], [2, 'error: usage: --endpoints: endpoint "http://127.0.0.1:9/v1" ends in /v1: give the node\'s base URL (e.g. http://127.0.0.1:9); the client adds /v1/... itself']);
  });

  it("manages leases", async () => {
    const { run } = setup();
    const g = await run("lease", "grant", "30", "--json");
    const id = (JSON.parse(g.out[0]) as { id: string }).id;
    await run("put", "lk", "v", "--lease", id);
    assert.deepEqual((await run("lease", "ttl", id, "--keys")).out, [`lease ${id} remaining 30s of 30s, keys: lk`]);
    assert.deepEqual((await run("lease", "keepalive", id, "--once")).out, [`lease ${id} kept alive, TTL 30s`]);
    assert.deepEqual((await run("lease", "revoke", id)).out, [`lease ${id} revoked, 1 keys deleted (revision 2)`]);
    assert.equal((await run("lease", "ttl", id)).code, 1);
  });

  it("runs a txn from a file or stdin; exit 3 when the compares fail", async () => {
    const { run, files, setStdin } = setup();
    await run("put", "x", "1");
    files["t.json"] = JSON.stringify({ compare: [{ key: "x", target: "value", result: "=", value: "1" }], success: [{ op: "put", key: "y", value: "ok" }, { op: "range", key: "x" }] });
    assert.deepEqual(await run("txn", "t.json"), { code: 0, out: ["SUCCEEDED revision 2", "  put revision 2", "  x = 1"], err: [] });
    setStdin(JSON.stringify({ compare: [{ key: "x", target: "version", result: ">", value: 5 }], failure: [{ op: "delete", key: "y" }] }));
    assert.deepEqual(await run("txn", "-"), { code: 3, out: ["FAILED revision 3", "  deleted 1"], err: [] });
    setStdin("{oops");
    assert.equal((await run("txn", "-")).code, 2);
  });

  it("watches until --count events", async () => {
    const { run } = setup();
    await run("put", "w/1", "a");
    await run("put", "w/2", "b");
    await run("del", "w/1");
    const r = await run("watch", "--prefix", "w/", "--from-revision", "1", "--count", "3");
    assert.deepEqual(r.out, ["PUT w/1 = a (revision 1)", "PUT w/2 = b (revision 2)", "DELETE w/1 (revision 3)"]);
  });

  it("refuses before sending: an inverted del/range/watch range, a malformed member, status with arguments, watch --count 0 (B9)", async () => {
    const { run, service } = setup();
    const calls = service.calls.length;
    // Before, each of these reached the server: the inverted del came back as a write of uncertain outcome
    // when no node answered, `status extra` asked the nodes, `watch --count 0` watched without end.
    for (const argv of [["del", "--start", "b", "--end", "a"], ["range", "--start", "b", "--end", "b"], ["watch", "--start", "z", "--end", "a"]]) {
      const r = await run(...argv);
      // Exit 2 since B10: what the SDK refuses before sending is a bad argument (it was exit 1, bad_request).
      assert.deepEqual([argv.join(" "), r.code, r.err[0]], [argv.join(" "), 2, `error: usage: empty or inverted range: start "${argv[2]}" must be below end "${argv[4]}"`]);
    }
    assert.deepEqual((await run("members", "add", "n4", "notaurl", "http://127.0.0.1:8084")).err, ['error: usage: peer URL "notaurl": not an http(s) URL (http://host:port)']);
    assert.deepEqual((await run("members", "add", "n 4", "http://127.0.0.1:7004", "http://127.0.0.1:8084")).err, [`error: usage: member id "n 4": 1-64 letters, digits, '.', '_' or '-', not . or ..`]);
    const st = await run("status", "extra");
    assert.deepEqual([st.code, st.err[0]], [2, 'error: usage: status takes no arguments (got "extra"); the nodes it asks are --endpoints']);
    const w = await run("watch", "k", "--count", "0");
    assert.deepEqual([w.code, w.err[0]], [2, 'error: usage: --count must be at least 1, got "0"']);
    assert.equal(service.calls.length, calls, `the service was called: ${service.calls.slice(calls).map((c) => c.method).join(", ")}`);
  });

  it("shows members and status, and changes membership", async () => {
    const { run, service } = setup();
    assert.deepEqual((await run("members")).out, ["ID\tROLE\tSTATUS\tLEADER\tCLIENT URL\tPEER URL", "n1\tvoter\tconnected\t*\thttp://127.0.0.1:8080\thttp://127.0.0.1:7000"]);
    assert.equal((await run("members", "add", "n2", "http://127.0.0.1:7002", "http://127.0.0.1:8082")).code, 0);
    assert.equal((await run("members", "transfer-leader", "n2")).code, 0);
    assert.deepEqual(service.calls.slice(-2).map((c) => c.method), ["addLearner", "transferLeader"]);
    assert.deepEqual((await run("status")).out, ["ENDPOINT\tID\tLEADER\tTERM\tCOMMIT\tAPPLIED\tREVISION", "http://n1.test\tn1\tn1\t3\t0\t0\t0"]);
  });

  it("prints help for the program and each command", async () => {
    const { run } = setup();
    const top = await run("--help");
    assert.equal(top.code, 0);
    assert.match(top.out[0], /^usage: edgekv \[--endpoints URL,\.\.\.\]/);
    for (const c of ["get", "put", "del", "range", "txn", "lease", "watch", "members", "status"]) {
      const r = await run(c, "--help");
      assert.deepEqual([c, r.code], [c, 0]);
      assert.match(r.out[0], new RegExp(`^usage: edgekv ${c}`));
    }
  });
});

describe("cli: put's value from stdin or a file", () => {
  const binary = new Uint8Array([0, 255, 10, 13, 0x2d, 10, 10]); // NUL, 0xFF, CR/LF, "-", two trailing newlines

  it("put KEY - stores stdin byte for byte, trailing newlines included", async () => {
    const { run, setStdin } = setup();
    setStdin(binary);
    assert.deepEqual(await run("put", "bin", "-"), { code: 0, out: ["OK revision 1"], err: [] });
    const got = JSON.parse((await run("get", "bin", "--json")).out[0]) as { value: string };
    assert.deepEqual(Uint8Array.from(atob(got.value), (ch) => ch.charCodeAt(0)), binary);
    setStdin("line\n");
    await run("put", "text", "-");
    assert.deepEqual((await run("get", "text")).out, ["line\n"]);
  });

  it("put KEY --file PATH stores the file's bytes, with the other put flags", async () => {
    const { run, files } = setup();
    files["v.bin"] = binary;
    assert.deepEqual(await run("put", "f", "--file", "v.bin", "--if-absent"), { code: 0, out: ["OK revision 1"], err: [] });
    const got = JSON.parse((await run("get", "f", "--json")).out[0]) as { value: string };
    assert.deepEqual(Uint8Array.from(atob(got.value), (ch) => ch.charCodeAt(0)), binary);
    files["e"] = new Uint8Array(0);
    assert.equal((await run("put", "empty", "--file", "e")).code, 0);
    assert.deepEqual((await run("get", "empty")).out, [""]);
  });

  it("a missing file, a value with --file, - with --file, and no value at all are usage errors (exit 2), nothing written", async () => {
    const { run, files } = setup();
    files["v.bin"] = "x";
    const missing = await run("put", "k", "--file", "/nonexistent/v.bin");
    assert.equal(missing.code, 2);
    assert.match(missing.err[0], /^error: usage: cannot read \/nonexistent\/v\.bin: ENOENT/);
    const both = await run("put", "k", "value", "--file", "v.bin");
    assert.deepEqual([both.code, both.err[0]], [2, 'error: usage: give the value as an argument, - (stdin) or --file PATH, not both (got "value" and --file v.bin)']);
    const dash = await run("put", "k", "-", "--file", "v.bin");
    assert.equal(dash.code, 2);
    assert.match(dash.err[0], /not both \(got "-" and --file v\.bin\)/);
    const none = await run("put", "k");
    assert.equal(none.code, 2);
    assert.match(none.err[0], /^error: usage: edgekv put KEY VALUE\|- /);
    assert.equal((await run("get", "k")).code, 1, "nothing was written");
  });

  it("put --help documents - and --file", async () => {
    const { run } = setup();
    const h = (await run("put", "--help")).out.join("\n");
    assert.match(h, /^usage: edgekv put KEY VALUE\|- \[--file PATH\]/);
    assert.match(h, /from stdin with -/);
    assert.match(h, /--file PATH/);
    assert.match(h, /byte for byte/);
  });
});

describe(`cli: a real process on ${currentRuntime()} against a served API`, () => {
  const cli = servedCli();
  let dir = "";
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "edgekv-cli-"));
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** Runs the CLI with `stdin` piped in (then closed); stdout as text. */
  const runChild = async (args: string[], stdin: Uint8Array) => {
    const r = await cli.run(args, stdin);
    return { code: r.code, stdout: new TextDecoder().decode(r.stdout), stderr: r.stderr };
  };

  const valueOf = async (key: string) => new Uint8Array(await (await fetch(`${cli.url()}/v1/kv/${key}`)).arrayBuffer());

  it("put KEY - reads the piped stdin byte for byte", async () => {
    const bytes = new Uint8Array([0, 255, 10, 13, 0x2d, 0xc3, 0x28, 10, 10]);
    const r = await runChild(["put", "piped", "-"], bytes);
    assert.deepEqual([r.code, r.stdout, r.stderr], [0, "OK revision 1\n", ""]);
    assert.deepEqual(await valueOf("piped"), bytes);
  });

  it("put KEY --file PATH reads the file; a missing file exits 2 with a message", async () => {
    const bytes = new Uint8Array(70_000).map((_, i) => (i * 7) & 0xff);
    await writeFile(join(dir, "v.bin"), bytes);
    const r = await runChild(["put", "filed", "--file", join(dir, "v.bin")], new Uint8Array(0));
    assert.deepEqual([r.code, r.stderr], [0, ""]);
    assert.deepEqual(await valueOf("filed"), bytes);
    const missing = await runChild(["put", "filed", "--file", join(dir, "absent.bin")], new Uint8Array(0));
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /^error: usage: cannot read .*absent\.bin/);
  });
});

describe("cli: launcher", () => {
  it("bin/edgekv.mjs --help runs under Node through tsx and exits 0", async () => {
    const bin = new URL("../../bin/edgekv.mjs", import.meta.url).pathname;
    const r = await new Promise<{ code: number; stdout: string }>((resolve) => {
      execFile("node", [bin, "--help"], { timeout: 60_000 }, (err, stdout) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout: String(stdout) }));
    });
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^usage: edgekv /);
    assert.match(r.stdout, /edgekv watch KEY/);
  });
});
