/**
 * A small text-script interaction harness in the style of etcd raft's `testdata/*.txt`: each line `> cmd`
 * is run against a RaftNet and followed by the exact output it must print. Commands:
 *
 *   nodes ID... [key=value...]   new cluster (bootstrap voters); options: preVote, checkQuorum (true|false),
 *                                maxInflight, maxPayloadEntries, readOnly (safe|lease)
 *   campaign ID | tick ID N | isolate ID | heal
 *   propose ID DATA | read ID REQ | transfer ID TO | conf ID addLearner:X promote:X remove:X ...
 *   add ID                       a joining node with empty storage
 *   deliver                      handle every Ready once and deliver what they sent (one hop)
 *   stabilize                    repeat `deliver` until quiet
 *   status ID...                 one line per node
 *   fsync-start ID               ID writes and applies its Ready but its fsync stays in flight (the node's
 *                                asynchronous persist): `messages` and advance() wait; meanwhile
 *                                deliver/stabilize step messages into ID without handling its Readies
 *   fsync-done ID                the fsync completes: ID's `messages` are queued and advance() is called
 *   crash ID                     ID restarts from its durable state (a Ready whose fsync is in flight is lost)
 *   log ID                       ID's stored (written) log
 *
 * Output of deliver/stabilize: every message delivered, and each entry applied / read served / read failed.
 */
import { RaftNet } from "./raft-net.ts";
import { MemoryStorage, RaftError, type ConfChangeStep, type Message, type RaftConfig } from "../../src/raft/index.ts";

const dec = new TextDecoder();
const enc = new TextEncoder();

/** One message as a single trace line, e.g. `a->b appendEntries t1 prev=1/1 entries=[2/1 "x"] commit=1`. */
export function formatMessage(m: Message): string {
  const head = `${m.from}->${m.to} ${m.type} t${m.term}`;
  switch (m.type) {
    case "appendEntries": {
      const ents = m.entries.map((e) => `${e.index}/${e.term}${e.type === "confChange" ? " conf" : ` "${dec.decode(e.data)}"`}`);
      return `${head} prev=${m.prevLogIndex}/${m.prevLogTerm} entries=[${ents.join(", ")}] commit=${m.commit}`;
    }
    case "appendEntriesResponse":
      return m.success ? `${head} ok match=${m.matchIndex}` : `${head} reject ${m.rejectIndex} hint=${m.conflictIndex}/${m.conflictTerm}`;
    case "requestVote":
      return `${head}${m.preVote ? " pre" : ""} last=${m.lastLogIndex}/${m.lastLogTerm}${m.leadershipTransfer ? " transfer" : ""}`;
    case "requestVoteResponse":
      return `${head}${m.preVote ? " pre" : ""} ${m.granted ? "granted" : "rejected"}`;
    case "heartbeat":
      return `${head} commit=${m.commit} readSeq=${m.readSeq}`;
    case "heartbeatResponse":
      return `${head} readSeq=${m.readSeq}`;
    case "installSnapshot":
      return `${head} snapshot=${m.snapshot.meta.index}/${m.snapshot.meta.term}`;
    case "timeoutNow":
      return head;
    case "readIndex":
      return `${head} ids=${m.requestIds.join(",")}`;
    case "readIndexResponse":
      return `${head} index=${m.index} ids=${m.requestIds.join(",")}`;
  }
}

/** Runs a script; returns the actual transcript (same format as the input, outputs replaced by what ran). */
export function runScript(text: string): string {
  let net: RaftNet | undefined;
  const out: string[] = [];
  const need = () => {
    if (!net) throw new Error("run `nodes ...` first");
    return net;
  };
  const handle = (n: RaftNet): boolean => {
    let any = false;
    for (const m of n.members.values()) {
      const rd = n.handleReady(m.id);
      if (!rd) continue;
      any = true;
      for (const e of rd.committedEntries) {
        out.push(`${m.id}: apply ${e.index}/${e.term} ${e.type === "confChange" ? "conf" : `"${dec.decode(e.data)}"`}`);
      }
      for (const r of rd.readStates) out.push(`${m.id}: read ${r.requestId} at ${r.index}`);
      for (const id of rd.droppedReadIds) out.push(`${m.id}: read ${id} dropped`);
    }
    return any;
  };
  const deliver = (n: RaftNet): boolean => {
    const any = handle(n);
    const batch = n.queue;
    for (const m of batch) if (!n.cut.has(`${m.from}->${m.to}`) && n.members.has(m.to)) out.push(formatMessage(m));
    n.deliver();
    return any || batch.length > 0;
  };
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line.startsWith(">")) {
      if (line.startsWith("#") || line === "") out.push(raw);
      continue;
    }
    out.push(line);
    const [cmd, ...args] = line.slice(1).trim().split(/\s+/);
    try {
      switch (cmd) {
        case "nodes": {
          const ids = args.filter((a) => !a.includes("="));
          const cfg: Partial<RaftConfig> = {};
          for (const kv of args.filter((a) => a.includes("="))) {
            const [k, v] = kv.split("=") as [string, string];
            (cfg as Record<string, unknown>)[k] = v === "true" ? true : v === "false" ? false : /^\d+$/.test(v) ? Number(v) : v;
          }
          net = new RaftNet(ids, cfg);
          break;
        }
        case "add":
          need().add(args[0]!, new MemoryStorage());
          break;
        case "campaign":
          need().node(args[0]!).campaign();
          break;
        case "tick":
          need().tick(args[0]!, Number(args[1] ?? 1));
          break;
        case "isolate":
          need().isolate(args[0]!);
          break;
        case "heal":
          need().heal();
          break;
        case "propose": {
          const p = need().node(args[0]!).propose(enc.encode(args[1] ?? ""));
          out.push(`${args[0]}: proposed ${p.index}/${p.term}`);
          break;
        }
        case "read":
          need().node(args[0]!).readIndex(args[1]!);
          break;
        case "transfer":
          need().node(args[0]!).transferLeader(args[1]!);
          break;
        case "conf": {
          const steps = args.slice(1).map((s) => {
            const [type, nodeId] = s.split(":") as [ConfChangeStep["type"], string];
            return { type, nodeId };
          });
          const p = need().node(args[0]!).proposeConfChange({ steps });
          out.push(`${args[0]}: proposed ${p.index}/${p.term}`);
          break;
        }
        case "deliver":
          deliver(need());
          break;
        case "stabilize": {
          const n = need();
          for (let i = 0; i < 100 && deliver(n); i++);
          break;
        }
        case "fsync-start": {
          const rd = need().beginReady(args[0]!);
          if (!rd) {
            out.push(`${args[0]}: no Ready`);
            break;
          }
          const hs = rd.hardState ? ` hardState=${rd.hardState.term}/${rd.hardState.vote || "-"}/${rd.hardState.commit}` : "";
          out.push(`${args[0]}: writes entries=[${rd.entries.map((e) => `${e.index}/${e.term}`).join(", ")}]${hs}${rd.snapshot ? ` snapshot=${rd.snapshot.meta.index}/${rd.snapshot.meta.term}` : ""}, fsync in flight`);
          for (const e of rd.committedEntries) out.push(`${args[0]}: apply ${e.index}/${e.term} ${e.type === "confChange" ? "conf" : `"${dec.decode(e.data)}"`}`);
          break;
        }
        case "fsync-done":
          need().finishReady(args[0]!);
          break;
        case "crash": {
          const n = need();
          if (n.get(args[0]!).pending) n.crashPending(args[0]!);
          else n.restart(args[0]!);
          break;
        }
        case "log": {
          const st = need().get(args[0]!).storage;
          const ents = st.lastIndex() < st.firstIndex() ? [] : st.entries(st.firstIndex(), st.lastIndex() + 1, Infinity);
          out.push(`${args[0]}: log ${ents.map((e) => `${e.index}/${e.term} "${dec.decode(e.data)}"`).join(" ") || "(empty)"}`);
          break;
        }
        case "status":
          for (const id of args) {
            const s = need().node(id).status();
            const cs = s.confState;
            const conf = `voters=${cs.voters.join(",")}${cs.votersOutgoing.length ? ` outgoing=${cs.votersOutgoing.join(",")}` : ""}${cs.learners.length ? ` learners=${cs.learners.join(",")}` : ""}`;
            out.push(`${id}: ${s.role} term=${s.term} vote=${s.vote || "-"} leader=${s.leaderId || "-"} commit=${s.commitIndex} applied=${s.appliedIndex} last=${s.lastIndex} ${conf}`);
          }
          break;
        default:
          throw new Error(`unknown command ${cmd}`);
      }
    } catch (e) {
      if (!(e instanceof RaftError)) throw e;
      out.push(`error: ${e.code}: ${e.message}`);
    }
  }
  return out.join("\n");
}
