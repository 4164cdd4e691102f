/**
 * A restart whose configuration disagrees with what the data dir records: a cluster id other than the one in
 * the data dir's marker is refused with a ConfigError naming both ids and the data dir (node.ts exits 2;
 * started anyway, the node and its peers would refuse each other with 403 cluster_mismatch forever).
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
