/**
 * Rules on the peer list (`peers`, the initial cluster) that a start must meet, checked by `loadConfig`
 * once every source is merged. They mirror what etcd refuses in `--initial-cluster` (a member list without
 * the member's own `--name`, or whose own entry does not match its `--initial-advertise-peer-urls`), fitted
 * to edgekv's deployments:
 *
 * - no two members share one peer URL (on every start: `peers` also overrides the stored URLs the node
 *   dials, see docs/configuration.md "Restart with other peers"; two ids on one URL send one member's
 *   messages to the other); `localhost` counts as both 127.0.0.1 and [::1];
 * - a `--bootstrap` start lists this node's own id: the founding voters are exactly `peers`, and every
 *   founding member must write the same configuration (a member left out would found a cluster that
 *   differs from the others', with itself added);
 * - a founding start (`bootstrap`, or `peers` naming only this node) whose own entry is on a loopback or
 *   wildcard host with an explicit port uses `peerPort`: the founding members are normally given one list,
 *   so that entry is where the others dial this node (and the address each records for it in the bootstrap
 *   configuration), and on this machine nothing else would answer there.
 *
 * Deliberately not checked: the own entry's host, and a port on any other host. Behind port mapping
 * (a container's published port) or a proxy the URL the others dial legitimately differs from the listen
 * port; on Fly.io the entry is the Machine's private DNS name (docs/deploy.md). The nemesis harness
 * (test/nemesis/cluster.ts) routes every link through a proxy, but lists each node's own entry at its real
 * peer port, so it meets all three rules.
 */
import type { Config, ConfigKey } from "./schema.ts";

/**
 * The first broken peer-list rule as `[field, message]`, or undefined when `c.peers` is fine. `origin(key)`
 * says where a field's value came from (e.g. `flag --peer-port`), so the message can name the other field
 * of a mismatch too. Pure: no I/O.
 */
export function peersProblem(c: Config, origin: (key: ConfigKey) => string): [ConfigKey, string] | undefined {
  const ids = Object.keys(c.peers);
  if (ids.length === 0) return undefined;
  const byUrl = new Map<string, string>();
  for (const id of ids) {
    for (const key of urlKeys(c.peers[id])) {
      const other = byUrl.get(key);
      if (other !== undefined) {
        const same = urlKey(c.peers[other]) === urlKey(c.peers[id]) ? "the same peer URL" : "one peer address";
        return ["peers", `${other} (${c.peers[other]}) and ${id} (${c.peers[id]}) have ${same}: each member needs its own (one node would get both members' messages)`];
      }
      byUrl.set(key, id);
    }
  }
  if (c.bootstrap && !(c.nodeId in c.peers)) {
    return [
      "peers",
      `does not list this node's id ${c.nodeId} (nodeId from ${origin("nodeId")}), but bootstrap is on (from ${origin("bootstrap")}): ` +
        `a new cluster is formed from exactly these members, so every founding member lists itself too (e.g. ${c.nodeId}=${c.advertisePeerUrl})`,
    ];
  }
  const founding = c.bootstrap || (ids.length === 1 && ids[0] === c.nodeId);
  const own = c.peers[c.nodeId];
  if (founding && own !== undefined) {
    const port = localPort(own);
    if (port !== undefined && port !== c.peerPort) {
      return [
        "peers",
        `this node's own entry ${c.nodeId}=${own} is on this machine at port ${port}, but peerPort is ${c.peerPort} (from ${origin("peerPort")}): ` +
          `the members would dial a port this node does not listen on; use ${c.nodeId}=${own.replace(/:\d+\/?$/, `:${c.peerPort}`)} or --peer-port ${port}`,
      ];
    }
  }
  return undefined;
}

/** Scheme, lower-case host and port of a peer URL (`http://Host:7000/` and `http://host:7000` are one); unparsable text lower-cased without a trailing slash. Pure. */
export function urlKey(raw: string): string {
  try {
    const u = new URL(raw);
    return `${u.protocol}//${u.host}`;
  } catch {
    return raw.toLowerCase().replace(/\/$/, "");
  }
}

/** `urlKey`, plus both loopback addresses for `localhost` (it resolves to 127.0.0.1 or ::1, depending on the resolver). */
function urlKeys(raw: string): string[] {
  const key = urlKey(raw);
  const m = /^(https?:\/\/)localhost(:\d+)?$/.exec(key);
  return m ? [key, `${m[1]}127.0.0.1${m[2] ?? ""}`, `${m[1]}[::1]${m[2] ?? ""}`] : [key];
}

/** Hosts that mean "this machine": loopback (127.0.0.0/8, ::1, localhost) and the wildcard addresses. */
const LOCAL_HOST = /^(127\.\d+\.\d+\.\d+|localhost|\[::1\]|0\.0\.0\.0|\[::\])$/i;

/** The explicit port of `raw` when its host is loopback or a wildcard; undefined otherwise (or no port given). */
function localPort(raw: string): number | undefined {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return undefined;
  }
  if (!LOCAL_HOST.test(u.hostname) || u.port === "") return undefined;
  return Number(u.port);
}
