import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ConfigError, configHelp, isHelpRequested, loadConfig } from "../../src/config/load.ts";
import { CONFIG_FIELDS, envName, flagName } from "../../src/config/schema.ts";
import { memberArgs, nodeEnv } from "../../scripts/node-command.ts";

const files: Record<string, string> = {
  "/etc/edgekv.yaml": "peerPort: 7100\nheartbeatIntervalMs: 100\npeers:\n  n1: http://127.0.0.1:7001\n  n2: http://127.0.0.1:7002\n",
  "/bad-type.yaml": "peerPort: seven\n",
  "/unknown.yaml": "peerPortt: 1\n",
  "/list.yaml": "- 1\n- 2\n",
  "/broken.yaml": "a: [1,\n",
};
const readFile = (p: string): string => {
  if (!(p in files)) throw new Error(`ENOENT: ${p}`);
  return files[p];
};
const load = (argv: string[], env: Record<string, string> = {}) => loadConfig({ argv, env, readFile });
function throwsConfig(fn: () => unknown, field: string, source: string, re?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ConfigError, `not a ConfigError: ${String(e)}`);
    assert.equal(e.field, field);
    assert.equal(e.source, source);
    if (re) assert.match(e.message, re);
    return true;
  });
}

describe("configuration", () => {
  it("applies the design seed defaults", () => {
    const c = load(["--node-id", "n1"]);
    assert.equal(c.nodeId, "n1");
    assert.equal(c.heartbeatIntervalMs, 150);
    assert.equal(c.electionTimeoutMsMin, 300);
    assert.equal(c.electionTimeoutMsMax, 600);
    assert.equal(c.tickMs, 50);
    assert.equal(c.snapshotEntries, 100_000);
    assert.equal(c.snapshotIntervalMs, 3_600_000);
    assert.equal(c.snapshotOffLoopBytes, 16 * 1024 * 1024);
    assert.equal(c.maxPayloadEntries, 1000);
    assert.equal(c.replicationTimeoutMs, 5000);
    assert.equal(c.peerReconnectMsMin, 1000);
    assert.equal(c.peerReconnectMsMax, 60_000);
    assert.equal(c.maxFrameBytes, 16 * 1024 * 1024);
    assert.equal(c.requestTimeoutMs, 30_000);
    assert.equal(c.maxConnections, 10_000);
    assert.equal(c.queueDepth, 1000);
    assert.equal(c.readOnly, "safe");
    assert.deepEqual([c.alertP50Ms, c.alertP99Ms, c.alertP999Ms, c.alertErrorRateWarn, c.alertErrorRateCritical], [10, 100, 500, 0.001, 0.01]);
    assert.equal(c.dataDir, "./data");
    assert.equal(c.clientHost, "127.0.0.1");
    assert.equal(c.clientPort, 8080);
    assert.equal(c.peerPort, 7000);
    assert.equal(c.advertisePeerUrl, "http://127.0.0.1:7000");
    assert.equal(c.advertiseClientUrl, "http://127.0.0.1:8080");
    assert.deepEqual(c.peers, {});
    assert.equal(c.logLevel, "info");
  });

  it("layers file < env < flag", () => {
    const fileOnly = load(["--config", "/etc/edgekv.yaml", "--node-id", "n1"]);
    assert.equal(fileOnly.peerPort, 7100);
    assert.equal(fileOnly.heartbeatIntervalMs, 100);
    assert.deepEqual(fileOnly.peers, { n1: "http://127.0.0.1:7001", n2: "http://127.0.0.1:7002" });
    const withEnv = load(["--config", "/etc/edgekv.yaml", "--node-id", "n1"], { EDGEKV_PEER_PORT: "7200", EDGEKV_PEERS: "n3=http://[::1]:7003" });
    assert.equal(withEnv.peerPort, 7200);
    assert.deepEqual(withEnv.peers, { n3: "http://[::1]:7003" });
    assert.equal(withEnv.heartbeatIntervalMs, 100, "file value kept where env is silent");
    const withFlag = load(["--config=/etc/edgekv.yaml", "--node-id=n1", "--peer-port", "7001"], { EDGEKV_PEER_PORT: "7200" });
    assert.equal(withFlag.peerPort, 7001);
    assert.equal(withFlag.advertisePeerUrl, "http://127.0.0.1:7001", "advertised URL follows the final port");
  });

  it("parses booleans, enums and numbers from strings", () => {
    const c = load(["--node-id", "n1", "--bootstrap", "--read-only", "lease", "--alert-error-rate-warn", "0.002"], { EDGEKV_LOG_LEVEL: "debug" });
    assert.equal(c.bootstrap, true);
    assert.equal(c.readOnly, "lease");
    assert.equal(c.alertErrorRateWarn, 0.002);
    assert.equal(c.logLevel, "debug");
    assert.equal(load(["--node-id", "n1", "--bootstrap", "false"]).bootstrap, false);
    assert.equal(load(["--node-id", "n1", "--no-bootstrap"], { EDGEKV_BOOTSTRAP: "true" }).bootstrap, false);
  });

  it("takes Fly.io hints: machine id, app name, :: listen, .internal advertise URL", () => {
    const env = { FLY_APP_NAME: "kvapp", FLY_MACHINE_ID: "148e21", FLY_REGION: "ams", FLY_PRIVATE_IP: "fdaa::3", EDGEKV_CLUSTER_SECRET: "0123456789abcdef" };
    const c = load([], env);
    assert.equal(c.nodeId, "148e21");
    assert.equal(c.clusterId, "kvapp");
    assert.equal(c.peerHost, "::");
    assert.equal(c.advertisePeerUrl, "http://148e21.vm.kvapp.internal:7000");
    throwsConfig(() => load([], { ...env, EDGEKV_CLUSTER_SECRET: "short" }), "clusterSecret", "env", /at least 16/);
  });

  it("names the field and the source of a bad value", () => {
    throwsConfig(() => load(["--node-id", "n1", "--peer-port", "99999"]), "peerPort", "flag", /--peer-port/);
    throwsConfig(() => load(["--node-id", "n1"], { EDGEKV_TICK_MS: "fast" }), "tickMs", "env", /EDGEKV_TICK_MS/);
    throwsConfig(() => load(["--node-id", "n1", "--config", "/bad-type.yaml"]), "peerPort", "file", /bad-type\.yaml/);
    throwsConfig(() => load(["--node-id", "n1", "--config", "/unknown.yaml"]), "peerPortt", "file", /unknown field/);
    throwsConfig(() => load(["--node-id", "n1", "--config", "/list.yaml"]), "", "file", /mapping/);
    throwsConfig(() => load(["--node-id", "n1", "--config", "/broken.yaml"]), "", "file");
    throwsConfig(() => load(["--node-id", "n1", "--config", "/missing.yaml"]), "", "file", /ENOENT/);
    throwsConfig(() => load(["--node-id", "n1", "--peerport", "1"]), "", "flag", /unknown flag --peerport/);
    throwsConfig(() => load(["--node-id", "n1", "--read-only", "fast"]), "readOnly", "flag");
    throwsConfig(() => load(["--node-id", "n1", "--peers", "n2"]), "peers", "flag");
    throwsConfig(() => load([]), "nodeId", "", /required/);
  });

  it("refuses the node ids . and .. (a member id is a URL path segment, and URL parsing drops those)", () => {
    for (const id of [".", ".."]) throwsConfig(() => load(["--node-id", id]), "nodeId", "flag", /not \. or \.\./);
    assert.equal(load(["--node-id", "..."]).nodeId, "...");
  });

  it("checks rules across fields", () => {
    throwsConfig(() => load(["--node-id", "n1", "--election-timeout-ms-max", "200"]), "electionTimeoutMsMax", "flag", />= electionTimeoutMsMin/);
    throwsConfig(() => load(["--node-id", "n1"], { EDGEKV_HEARTBEAT_INTERVAL_MS: "400" }), "electionTimeoutMsMin", "default", />.*heartbeatIntervalMs/);
    throwsConfig(() => load(["--node-id", "n1", "--peer-reconnect-ms-min", "70000"]), "peerReconnectMsMax", "default");
  });

  it("refuses an answer cap below the largest one-key answer (a value could be written but never read back)", () => {
    // Defaults: maxKeyBytes 4096 + maxValueBytes 1 MiB + 64 bytes per key = 1052736 bytes.
    throwsConfig(() => load(["--node-id", "n1", "--max-response-bytes", "65536"]), "maxResponseBytes", "flag", /must be >= maxKeyBytes \+ maxValueBytes \+ 64 \(1052736\)/);
    throwsConfig(() => load(["--node-id", "n1", "--max-response-bytes", "1052735"]), "maxResponseBytes", "flag");
    assert.equal(load(["--node-id", "n1", "--max-response-bytes", "1052736"]).maxResponseBytes, 1052736);
    assert.equal(load(["--node-id", "n1", "--max-response-bytes", "65536", "--max-value-bytes", "16384"]).maxResponseBytes, 65536);
  });

  it("refuses a client port equal to the peer port on one address, and accepts it on two addresses", () => {
    throwsConfig(() => load(["--node-id", "n1", "--client-port", "7100", "--peer-port", "7100"]), "peerPort", "flag", /must differ from clientPort \(7100\) while both listen on one address/);
    throwsConfig(() => load(["--node-id", "n1", "--client-port", "7100", "--peer-port", "7100", "--client-host", "::", "--peer-host", "10.0.0.5"]), "peerPort", "flag", /must differ from clientPort/);
    const two = load(["--node-id", "n1", "--client-port", "7100", "--peer-port", "7100", "--client-host", "127.0.0.1", "--peer-host", "10.0.0.5"]);
    assert.equal(two.peerPort, two.clientPort);
  });

  it("refuses a member id listed twice, https:// peer URLs and port 0", () => {
    throwsConfig(() => load(["--node-id", "n1", "--peers", "n1=http://127.0.0.1:7000,n2=http://127.0.0.1:7001,n2=http://127.0.0.1:7002"]), "peers", "flag", /member id n2 is listed twice/);
    throwsConfig(() => load(["--node-id", "n1", "--peers", "n1=http://127.0.0.1:7000,n2=https://10.0.0.2:7000"]), "peers", "flag", /n2: .*https:\/\/ is not supported/);
    throwsConfig(() => load(["--node-id", "n1", "--peers", "n1=http://127.0.0.1:7000,n2=http://10.0.0.2:0"]), "peers", "flag", /n2: port 0 is no address to dial/);
    throwsConfig(() => load(["--node-id", "n1", "--advertise-peer-url", "https://n1.example:7000"]), "advertisePeerUrl", "flag", /https:\/\/ is not supported/);
    // A client URL may be https (a TLS proxy in front of the node); ports like 10 or 7000 are fine.
    assert.equal(load(["--node-id", "n1", "--advertise-client-url", "https://kv.example"]).advertiseClientUrl, "https://kv.example");
    assert.equal(load(["--node-id", "n1", "--peers", "n1=http://127.0.0.1:7000,n2=http://10.0.0.2:10"]).peers.n2, "http://10.0.0.2:10");
  });

  it("refuses a peer list with one URL for two members, on every start", () => {
    const dup = "n1=http://127.0.0.1:7001,n2=http://127.0.0.1:7002,n3=http://127.0.0.1:7002/";
    throwsConfig(() => load(["--node-id", "n1", "--peer-port", "7001", "--peers", dup]), "peers", "flag", /invalid peers from flag \(--peers\): n2 \(http:\/\/127\.0\.0\.1:7002\) and n3 \(http:\/\/127\.0\.0\.1:7002\/\) have the same peer URL/);
    // localhost is 127.0.0.1 or ::1, depending on the resolver: either is the same address.
    throwsConfig(() => load(["--node-id", "n1", "--peer-port", "7001", "--peers", "n1=http://127.0.0.1:7001,n2=http://127.0.0.1:7002,n3=http://localhost:7002"]), "peers", "flag", /n2 .* and n3 \(http:\/\/localhost:7002\) have one peer address/);
    throwsConfig(() => load(["--node-id", "n1", "--peer-port", "7001", "--peers", "n1=http://localhost:7001,n2=http://[::1]:7001"]), "peers", "flag", /n1 .* and n2 .* have one peer address/);
    // Distinct loopback addresses on one port are distinct sockets.
    assert.equal(Object.keys(load(["--node-id", "n1", "--peers", "n1=http://127.0.0.1:7000,n2=http://127.0.0.2:7000,n3=http://[::1]:7000"]).peers).length, 3);
    throwsConfig(() => load(["--node-id", "n1", "--peer-port", "7001"], { EDGEKV_PEERS: "n1=http://A.example:7000,n2=http://a.example:7000" }), "peers", "env", /EDGEKV_PEERS.*n1 \(http:\/\/A.example:7000\) and n2 \(http:\/\/a.example:7000\) have the same peer URL/);
  });

  it("refuses a bootstrap whose peers leave this node out, naming the sources", () => {
    const peers = "n2=http://127.0.0.1:7002,n3=http://127.0.0.1:7003";
    throwsConfig(() => load(["--node-id", "n1", "--bootstrap", "--peers", peers]), "peers", "flag", /does not list this node's id n1 \(nodeId from flag --node-id\), but bootstrap is on \(from flag --bootstrap\).*n1=http:\/\/127\.0\.0\.1:7000/);
    throwsConfig(() => load(["--node-id", "n1", "--peers", peers], { EDGEKV_BOOTSTRAP: "true" }), "peers", "flag", /from env EDGEKV_BOOTSTRAP/);
    // Without bootstrap a node not in peers joins the members it names (a new learner, docs/deploy.md's seed list).
    assert.deepEqual(Object.keys(load(["--node-id", "n1", "--peers", peers]).peers), ["n2", "n3"]);
  });

  it("refuses a founding member whose own loopback entry is not on its peer port", () => {
    const peers = "n1=http://127.0.0.1:7001,n2=http://127.0.0.1:7002";
    throwsConfig(() => load(["--node-id", "n1", "--bootstrap", "--peers", peers, "--peer-port", "7005"]), "peers", "flag", /own entry n1=http:\/\/127\.0\.0\.1:7001 .* port 7001, but peerPort is 7005 \(from flag --peer-port\).*n1=http:\/\/127\.0\.0\.1:7005/);
    throwsConfig(() => load(["--node-id", "n1", "--bootstrap", "--peers", peers]), "peers", "flag", /peerPort is 7000 \(from default\)/);
    throwsConfig(() => load(["--node-id", "n1", "--peers", "n1=http://localhost:7001"]), "peers", "flag", /port 7001, but peerPort is 7000/);
    throwsConfig(() => load(["--node-id", "n1", "--bootstrap", "--peers", "n1=http://[::1]:7001,n2=http://[::1]:7002"]), "peers", "flag", /port 7001/);
    throwsConfig(() => load(["--node-id", "n1", "--bootstrap", "--peers", "n1=http://0.0.0.0:7001,n2=http://127.0.0.1:7002"]), "peers", "flag", /port 7001/);
    assert.equal(load(["--node-id", "n1", "--bootstrap", "--peers", peers, "--peer-port", "7001"]).peerPort, 7001);
  });

  it("accepts own entries that may differ from the listen port: other hosts, no port, restarts, Fly.io DNS names", () => {
    // A published container port or a proxy on another host: the URL others dial is not the listen port.
    assert.equal(load(["--node-id", "n1", "--bootstrap", "--peers", "n1=http://10.0.0.1:17000,n2=http://10.0.0.2:7000"]).peerPort, 7000);
    assert.equal(load(["--node-id", "n1", "--bootstrap", "--peers", "n1=http://127.0.0.1,n2=http://127.0.0.2"]).peerPort, 7000);
    // Not founding (a restart or a joining learner): the own entry is not what anyone dials.
    assert.equal(load(["--node-id", "n1", "--peers", "n1=http://127.0.0.1:7001,n2=http://127.0.0.1:7002"]).peerPort, 7000);
    const fly = { FLY_APP_NAME: "kvapp", FLY_MACHINE_ID: "148e21", EDGEKV_CLUSTER_SECRET: "0123456789abcdef", EDGEKV_PEERS: "148e21=http://148e21.vm.kvapp.internal:7000" };
    assert.deepEqual(load([], fly).peers, { "148e21": "http://148e21.vm.kvapp.internal:7000" });
    assert.deepEqual(Object.keys(load([], { ...fly, FLY_MACHINE_ID: "2a9f00" }).peers), ["148e21"]);
  });

  it("accepts the peer lists of scripts/cluster.ts and the nemesis harness (own entry at the real port, links through proxies)", () => {
    const plans = [0, 1, 2].map((i) => ({ id: `n${i + 1}`, runtime: "node" as const, clientPort: 8080 + i, peerPort: 8180 + i, dataDir: `/tmp/d/n${i + 1}` }));
    for (const m of plans) {
      for (const bootstrap of [true, false]) assert.equal(load(memberArgs(m, plans, { bootstrap })).nodeId, m.id);
    }
    // test/nemesis/cluster.ts: node i lists itself at its peer port and j at the i -> j proxy's port.
    for (const [i, self] of ["n1", "n2", "n3"].entries()) {
      const peers = ["n1", "n2", "n3"].map((id, j) => `${id}=http://127.0.0.1:${id === self ? 7100 + i : 7200 + 10 * i + j}`).join(",");
      assert.equal(load(["--node-id", self, "--peer-port", String(7100 + i), "--peers", peers, "--bootstrap", "true"]).nodeId, self);
    }
  });

  it("ignores unknown EDGEKV_ variables (tools set their own)", () => {
    assert.equal(load(["--node-id", "n1"], { EDGEKV_TEST_RUNTIME: "node" }).nodeId, "n1");
  });

  it("generates help listing every option with its default and unit", () => {
    const help = configHelp();
    for (const key of Object.keys(CONFIG_FIELDS)) {
      assert.ok(help.includes(flagName(key)), `help lacks ${flagName(key)}`);
      assert.ok(help.includes(envName(key)), `help lacks ${envName(key)}`);
    }
    assert.match(help, /--heartbeat-interval-ms <int> \[ms\]\s+default 150/);
    assert.match(help, /--max-frame-bytes <int> \[bytes\]\s+default 16777216/);
    assert.equal(isHelpRequested(["--peer-port", "1", "--help"]), true);
    assert.equal(isHelpRequested(["--peer-port", "1"]), false);
    assert.equal(envName("electionTimeoutMsMin"), "EDGEKV_ELECTION_TIMEOUT_MS_MIN");
    assert.equal(flagName("alertP999Ms"), "--alert-p999-ms");
  });
});

describe("nodeEnv (scripts/node-command.ts)", () => {
  it("adds MIMALLOC_PURGE_HOLES=0 for Bun nodes only, keeps a value the caller set, and copies the rest", () => {
    const base = { EDGEKV_CLUSTER_SECRET: "s", PATH: "/bin" };
    assert.deepEqual(nodeEnv("bun", base), { EDGEKV_CLUSTER_SECRET: "s", PATH: "/bin", MIMALLOC_PURGE_HOLES: "0" });
    assert.deepEqual(nodeEnv("node", base), base);
    assert.deepEqual(nodeEnv("deno", base), base);
    assert.equal(nodeEnv("bun", { ...base, MIMALLOC_PURGE_HOLES: "1" }).MIMALLOC_PURGE_HOLES, "1");
    assert.equal("MIMALLOC_PURGE_HOLES" in base, false, "the caller's object is not changed");
  });
});
