/**
 * A restart whose configuration disagrees with what the data dir records: a cluster id other than the one in
 * the data dir's marker is refused with a ConfigError naming both ids and the data dir (node.ts exits 2;
 * started anyway, the node and its peers would refuse each other with 403 cluster_mismatch forever); a
 * `--peers` other than the stored membership is logged, saying what differs and what wins (the stored
 * membership; configured URLs of listed members are dialed), at warn, or at info when it only omits members.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { ConfigError, loadConfig } from "../../src/config/load.ts";
import { EdgeNode } from "../../src/server/node.ts";
import { freePort, testPorts } from "../helpers/inprocess-cluster.ts";
import { makeTempDir, removeDir } from "../helpers/sql.ts";

const dirs: string[] = [];
after(() => dirs.forEach(removeDir));

async function config(dataDir: string, flags: string[]) {
  const port = await freePort();
  return loadConfig({ argv: ["--node-id", "n1", "--data-dir", dataDir, "--peer-port", String(port), "--client-port", String(port + 1), ...flags], env: {} });
}

/** Opens, starts, writes one key (a lone voter elects itself), stops. */
async function startPutStop(dataDir: string, flags: string[]): Promise<void> {
  const node = await EdgeNode.open(await config(dataDir, flags), await testPorts("n1", []));
  await node.start();
  let status = 0;
  for (let i = 0; i < 50 && status !== 200; i++) {
    const r = await node.fetch(new Request("http://x/v1/kv/k", { method: "PUT", body: "v" }));
    status = r.status;
    await r.body?.cancel();
    if (status !== 200) await new Promise((res) => setTimeout(res, 100));
  }
  assert.equal(status, 200);
  await node.stop();
}

describe("restart against the data dir's records", () => {
  it("refuses a cluster id other than the one recorded in the data dir, naming both ids and the dir", async () => {
    const dir = makeTempDir();
    dirs.push(dir);
    await startPutStop(dir, ["--cluster-id", "alpha"]);
    await assert.rejects(EdgeNode.open(await config(dir, ["--cluster-id", "beta"]), await testPorts("n1", [])), (e: unknown) => {
      assert.ok(e instanceof ConfigError, `not a ConfigError: ${String(e)}`);
      assert.equal(e.field, "clusterId");
      assert.match(e.message, /clusterId "beta" .* does not match the cluster id "alpha" recorded in data dir /);
      assert.ok(e.message.includes(dir), e.message);
      assert.match(e.message, /--cluster-id alpha/);
      return true;
    });
    // The same id starts (and the refused open left the data dir usable).
    await startPutStop(dir, ["--cluster-id", "alpha"]);
  });
});

describe("restart with a --peers other than the stored membership", () => {
  /** Opens n1 with `peers`, starts and stops it; returns the log lines of that run. */
  async function run(dataDir: string, peerPort: number, peers: string, bootstrap = false): Promise<string[]> {
    const lines: string[] = [];
    const argv = ["--node-id", "n1", "--data-dir", dataDir, "--peer-port", String(peerPort), "--client-port", String(await freePort()), "--peers", peers];
    const node = await EdgeNode.open(loadConfig({ argv: bootstrap ? [...argv, "--bootstrap"] : argv, env: {} }), await testPorts("n1", lines));
    await node.start();
    members.push((await node.cluster()).members.map((m) => m.id).join(","));
    await node.stop();
    return lines;
  }
  /** The member ids each run's node reported, as "n1,n2,n3". */
  const members: string[] = [];
  const drift = (lines: string[]) => lines.filter((l) => l.includes("peers differs"));

  it("says what differs and that the stored membership wins, at warn; a subset at stored URLs at info; nothing when they agree", async () => {
    const dir = makeTempDir();
    dirs.push(dir);
    const [p1, p2, p3, moved, p4] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
    const url = (p: number) => `http://127.0.0.1:${p}`;
    const founding = `n1=${url(p1)},n2=${url(p2)},n3=${url(p3)}`;
    assert.deepEqual(drift(await run(dir, p1, founding, true)), [], "a bootstrap has nothing stored to differ from");
    assert.deepEqual(drift(await run(dir, p1, founding)), [], "the same peers: no line");

    const lines = drift(await run(dir, p1, `n1=${url(p1)},n2=${url(moved)},n4=${url(p4)}`));
    assert.equal(lines.length, 1, lines.join("\n"));
    const [line] = lines;
    assert.match(line, / warn /);
    assert.ok(line.includes(`membership stored in data dir ${dir}; the stored membership wins`), line);
    assert.match(line, /listed but not members: n4 \(ignored/);
    assert.ok(line.includes(`members not listed: n3 at ${url(p3)} (still members; dialed at the stored URL)`), line);
    assert.ok(line.includes(`other URLs: n2 ${url(moved)} (stored ${url(p2)}) (this node dials the configured URL`), line);

    assert.equal(members.at(-1), "n1,n2,n3", "n4 did not become a member; n3 stayed one");

    // A seed list naming only some members at their stored URLs (Fly.io's EDGEKV_PEERS): info, not warn.
    const seed = drift(await run(dir, p1, `n1=${url(p1)},n2=${url(p2)}`));
    assert.equal(seed.length, 1, seed.join("\n"));
    assert.match(seed[0], / info .*members not listed: n3 at /);
    assert.doesNotMatch(seed[0], /listed but not members|other URLs/);
  });
});
