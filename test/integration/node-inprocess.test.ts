/**
 * The node end to end in one process: three EdgeNodes with real SQLite files and real HTTP/2 peer links on
 * loopback, driven through their client handlers. Checks the write path (propose -> persist -> replicate ->
 * apply -> answer), forwarding from followers, ReadIndex reads on followers, conditional writes, member
 * URLs, restart catch-up and InstallSnapshot for a node that fell behind a compacted log (carrying a value
 * of exactly the size limit, docs/scenarios.md C19), and a restart of the whole cluster on new peer ports.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { InProcessCluster, freePort } from "../helpers/inprocess-cluster.ts";
import { latestSnapshot } from "../../src/kv/snapshot.ts";
import { nodeFsSnapshotFiles } from "../../runtime-adapters/snapshot-files.ts";

const text = (r: Response) => r.text();

describe("EdgeNode in process, 3 nodes", () => {
  let c: InProcessCluster;
  before(async () => {
    c = await InProcessCluster.start({ nodes: 3, flags: ["--snapshot-entries", "40"] });
  });
  after(async () => {
    await c?.close();
  });

  it("elects a leader and serves a put on a follower, read back linearizably on another node", async () => {
    const leader = await c.leader();
    const followers = [...c.nodes.keys()].filter((id) => id !== leader);
    const put = await c.request(followers[0], "PUT", "/v1/kv/greeting", "hello");
    assert.equal(put.status, 200, await put.clone().text());
    const body = (await put.json()) as { revision: number };
    assert.ok(body.revision >= 1);
    const get = await c.request(followers[1], "GET", "/v1/kv/greeting");
    assert.equal(get.status, 200);
    assert.equal(await get.text(), "hello");
    assert.equal(get.headers.get("etag"), `"${body.revision}"`);
  });

  it("the election is in each node's log and in edgekv_leader_changes_seen_total", async () => {
    const leader = await c.leader();
    const logs = c.logs.join("\n");
    assert.match(logs, new RegExp(`\\[${leader}\\] .*starting an election in term \\d+`));
    assert.match(logs, new RegExp(`\\[${leader}\\] .*became leader in term \\d+`));
    for (const [id, n] of c.nodes) {
      const m = /^edgekv_leader_changes_seen_total (\d+)$/m.exec(await n.metricsText());
      assert.ok(m && Number(m[1]) >= 1, `${id}: ${m?.[0]}`);
      if (id !== leader) assert.match(logs, new RegExp(`\\[${id}\\] .*following leader ${leader} in term \\d+`));
    }
  });

  it("every member's client URL reaches every node's cluster view (members announce themselves with a member update)", async () => {
    const want = Object.fromEntries([...c.configs].map(([id, cfg]) => [id, cfg.advertiseClientUrl]));
    const until = Date.now() + 15_000;
    let views: Record<string, Record<string, string>> = {};
    while (Date.now() < until) {
      views = {};
      for (const [id, n] of c.nodes) views[id] = Object.fromEntries((await n.cluster()).members.map((m) => [m.id, m.clientUrl]));
      if (Object.values(views).every((v) => JSON.stringify(v) === JSON.stringify(want))) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    for (const v of Object.values(views)) assert.deepEqual(v, want);
  });

  it("answers 412 to a failed If-Match and 200 to a matching one", async () => {
    const leader = await c.leader();
    const r1 = await c.request(leader, "PUT", "/v1/kv/cas", "v1");
    const rev = ((await r1.json()) as { revision: number }).revision;
    const bad = await c.request(leader, "PUT", "/v1/kv/cas", "v2", { "if-match": `"${rev + 100}"` });
    assert.equal(bad.status, 412, await text(bad.clone()));
    assert.equal(((await bad.json()) as { error: { code: string } }).error.code, "compare_failed");
    const good = await c.request(leader, "PUT", "/v1/kv/cas", "v2", { "if-match": `"${rev}"` });
    assert.equal(good.status, 200, await text(good.clone()));
    const get = await c.request(leader, "GET", "/v1/kv/cas");
    assert.equal(await get.text(), "v2");
  });

  it("the leader's /metrics times its writes' commits and each follower's AppendEntries round trip", async () => {
    const leader = await c.leader();
    const n = c.nodes.get(leader)!;
    const count = (t: string, re: RegExp) => Number(re.exec(t)?.[1] ?? 0);
    const commitRe = /^edgekv_proposal_commit_seconds_count (\d+)$/m;
    const before = count(await n.metricsText(), commitRe);
    for (let i = 0; i < 20; i++) assert.equal((await c.request(leader, "PUT", `/v1/kv/rtt-${i}`, "v")).status, 200);
    const t = await n.metricsText();
    // Each of the 20 writes was proposed on the leader and committed there: one observation each.
    assert.equal(count(t, commitRe) - before, 20);
    for (const id of [...c.nodes.keys()].filter((x) => x !== leader)) {
      const rtt = count(t, new RegExp(`^edgekv_peer_round_trip_seconds_count\\{peer="${id}"\\} (\\d+)$`, "m"));
      assert.ok(rtt >= 1, `round trips to ${id}: ${rtt}\n${t}`);
      assert.match(t, new RegExp(`^edgekv_peer_round_trip_seconds_bucket\\{peer="${id}",le="\\+Inf"\\} ${rtt}$`, "m"));
    }
    // A follower leads nothing: no round-trip series.
    const follower = [...c.nodes.keys()].find((x) => x !== leader)!;
    assert.doesNotMatch(await c.nodes.get(follower)!.metricsText(), /^edgekv_peer_round_trip_seconds_count/m);
  });

  it("a stopped follower catches up after restart, through InstallSnapshot when the log was compacted", async () => {
    const leader = await c.leader();
    const victim = [...c.nodes.keys()].find((id) => id !== leader)!;
    await c.stopNode(victim);
    // docs/scenarios.md C19: a value of exactly the limit is stored and later shipped in the snapshot; one byte
    // more is refused and changes nothing.
    const big = new Uint8Array(1024 * 1024).map((_, i) => (i * 7 + 3) & 0xff);
    const atLimit = await c.request(leader, "PUT", "/v1/kv/big", big);
    assert.equal(atLimit.status, 200, await text(atLimit.clone()));
    const over = await c.request(leader, "PUT", "/v1/kv/big2", new Uint8Array(1024 * 1024 + 1));
    assert.equal(over.status, 413);
    assert.equal(((await over.json()) as { error: { code: string } }).error.code, "payload_too_large");
    assert.equal((await c.request(leader, "GET", "/v1/kv/big2")).status, 404);
    // 40-entry snapshots, a 40-entry log tail: 150 writes compact the victim's next index away.
    for (let i = 0; i < 150; i++) {
      const r = await c.request(leader, "PUT", `/v1/kv/bulk/${String(i).padStart(3, "0")}`, `value-${i}`);
      assert.equal(r.status, 200, await text(r.clone()));
    }
    await c.startNode(victim);
    const until = Date.now() + 10_000;
    let got = "";
    while (Date.now() < until) {
      const r = await c.request(victim, "GET", "/v1/kv/bulk/149?consistency=stale");
      if (r.status === 200) {
        got = await r.text();
        break;
      }
      await r.body?.cancel();
      await new Promise((res) => setTimeout(res, 50));
    }
    assert.equal(got, "value-149", c.logs.filter((l) => !l.includes(" debug ")).filter((l, i, a) => i < 30 || i > a.length - 10).join("\n"));
    assert.ok(c.logs.some((l) => l.includes("received snapshot")), "the restarted follower should have installed a snapshot:\n" + c.logs.filter((l) => /snapshot/i.test(l)).join("\n"));
    // The received file is recorded as a local snapshot (metadata beside it), so a later prune keeps it and
    // this node can send it on as leader.
    const kept = latestSnapshot(nodeFsSnapshotFiles, `${c.configs.get(victim)!.dataDir}/snapshots`);
    assert.ok(kept && kept.meta.index >= 80, `received snapshot not recorded: ${JSON.stringify(kept)}`);
    const bigBack = new Uint8Array(await (await c.request(victim, "GET", "/v1/kv/big?consistency=stale")).arrayBuffer());
    assert.equal(bigBack.length, big.length);
    assert.ok(bigBack.every((b, i) => b === big[i]), "the 1 MiB value arrived byte-exact through the snapshot");
    const range = await c.request(victim, "GET", "/v1/kv?prefix=bulk/&countOnly=true&consistency=stale");
    assert.equal(range.status, 200);
    assert.equal(((await range.json()) as { count: number }).count, 150);
  });

  it("restarted on new peer ports, the cluster follows its --peers over the stale URLs in its member table", async () => {
    const ids = [...c.configs.keys()];
    for (const id of ids) await c.stopNode(id);
    const ports = await Promise.all(ids.map(() => freePort()));
    const peers = Object.fromEntries(ids.map((id, i) => [id, `http://127.0.0.1:${ports[i]}`]));
    for (const [i, id] of ids.entries()) {
      const cfg = c.configs.get(id)!;
      c.configs.set(id, { ...cfg, peers, peerPort: ports[i], advertisePeerUrl: peers[id] });
    }
    for (const id of ids) await c.startNode(id);
    const leader = await c.leader(10_000);
    const r = await c.request(leader, "GET", "/v1/kv/greeting");
    assert.equal(await r.text(), "hello");
  });
});
