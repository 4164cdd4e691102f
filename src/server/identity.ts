/**
 * Identity check of a node that starts with an empty store and does not bootstrap (docs/scenarios.md C13).
 *
 * A voter that lost its data (a wiped disk, or its whole data dir gone together with the marker file that
 * `EdgeNode.open` checks) must not come back under its old id: with its hard state gone it may vote a
 * second time in a term it already voted in, and it may count toward a quorum without entries it had
 * acknowledged, so a committed write can be lost. Only the rest of the cluster still knows that the id is
 * a voter, so the node asks it before taking part in Raft — the way etcd refuses a member whose data dir
 * is new but whose id the cluster already lists as started ("member has already been bootstrapped").
 * A brand-new learner (added with POST /v1/cluster/members, then started empty) passes: learners do not
 * vote. A removed member started empty passes too and waits to be added back.
 */
import type { NodeId } from "../raft/types.ts";

/** What {@link checkJoinIdentity} needs: the peer transport's forward call and a logger. */
export interface JoinIdentityOptions {
  /** This node's id. */
  nodeId: NodeId;
  /** The other members' ids (the peers this node was started with). */
  peerIds: NodeId[];
  /** Sends a client request to a peer's API over the peer link (PeerTransport.forward). */
  forward: (to: NodeId, request: Request, signal: AbortSignal) => Promise<Response>;
  log: (level: "info" | "warn" | "error", msg: string) => void;
  /** How long the cluster must keep listing this node as a voter before the start is refused, ms (default 3000: a removal's final configuration commits in milliseconds). */
  voterGraceMs?: number;
  /** Pause between rounds of questions, ms (default 250). */
  roundEveryMs?: number;
  /** Deadline of one question to one peer, ms (default 1000). */
  askTimeoutMs?: number;
  /** Interval of the "waiting for a member" warning, ms (default 5000). */
  logEveryMs?: number;
  /** Give up when no member answered for this long, ms (default 600 000); the start then fails. */
  maxWaitMs?: number;
}

/** The part of a member's `GET /v1/cluster` answer (docs/api.md) the check reads. */
interface PeerView {
  selfId: string;
  leaderId: string;
  term: number;
  commitIndex: number;
  members: Array<{ id: string; role: string }>;
}

/** The start was refused: the cluster lists this node as a voter although its store is empty. */
export class IdentityRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "IdentityRefusedError";
  }
}

/**
 * Resolves once a member answered and the cluster (the answering leader with the highest term, else the
 * answer with the highest commit index) does not list `nodeId` as a voter. Asks every peer each round.
 * @throws IdentityRefusedError when it lists `nodeId` as a voter for `voterGraceMs`, or when no member
 *   answered within `maxWaitMs` (the message says what to do).
 */
export async function checkJoinIdentity(opts: JoinIdentityOptions): Promise<void> {
  const graceMs = opts.voterGraceMs ?? 3000;
  const everyMs = opts.roundEveryMs ?? 250;
  const askMs = opts.askTimeoutMs ?? 1000;
  const maxWaitMs = opts.maxWaitMs ?? 600_000;
  const logEveryMs = opts.logEveryMs ?? 5000;
  const t0 = performance.now();
  let voterSinceMs: number | undefined;
  let lastLogMs = t0;
  const maxRounds = Math.ceil(maxWaitMs / everyMs) + 1;
  for (let round = 0; round < maxRounds; round++) {
    const answers = await Promise.all(opts.peerIds.map((id) => ask(opts, id, askMs)));
    const views = answers.filter((a): a is PeerView => typeof a !== "string");
    // Why nobody answered: a wrong cluster secret looks like a hang otherwise (new-user trial).
    const why = opts.peerIds.map((id, i) => `${id}: ${typeof answers[i] === "string" ? answers[i] : "answered"}`).join("; ");
    const now = performance.now();
    const authority = pickAuthority(views);
    if (authority) {
      const listed = authority.members.some((m) => m.id === opts.nodeId && m.role === "voter");
      if (!listed) {
        if (voterSinceMs !== undefined) opts.log("info", `the cluster no longer lists ${opts.nodeId} as a voter; joining with an empty store`);
        // Not listed at all: nothing will happen until someone adds it (a new user waited on a silent node).
        if (!authority.members.some((m) => m.id === opts.nodeId)) {
          opts.log(
            "warn",
            `member ${authority.selfId} does not list ${opts.nodeId} as a member: it waits until it is added ` +
              `(edgekv members add ${opts.nodeId} <peer URL> <client URL>, or POST /v1/cluster/members on a member; docs/api.md)`,
          );
        }
        return;
      }
      voterSinceMs ??= now;
      if (now - voterSinceMs >= graceMs) {
        throw new IdentityRefusedError(
          `refusing to start: member ${authority.selfId} lists ${opts.nodeId} as a voter of the cluster, but this node's data dir holds no state: ` +
            `it lost its data and must not vote or count toward a quorum under its old identity (it could lose acknowledged writes). ` +
            `Remove it (DELETE /v1/cluster/members/${opts.nodeId} on another member), then start it again with an empty data dir and add it back ` +
            `as a learner (POST /v1/cluster/members), promoting it once it has caught up.`,
        );
      }
    } else if (now - t0 >= maxWaitMs) {
      throw new IdentityRefusedError(
        `refusing to start: no member (${opts.peerIds.join(", ")}) answered within ${maxWaitMs} ms, so it cannot be confirmed that ` +
          `${opts.nodeId}, whose data dir holds no state, is not a voter that lost its data (${why}). Start the other members first, ` +
          `with the same cluster secret.`,
      );
    } else if (now - lastLogMs >= logEveryMs) {
      lastLogMs = now;
      // Members in this wait do not listen yet, so a set of them started without --bootstrap waits for each
      // other forever (U5): say what starts a new cluster.
      opts.log(
        "warn",
        `waiting for a member (${opts.peerIds.join(", ")}) to confirm that ${opts.nodeId}, started with an empty data dir, is not a voter that lost its data (${why}); ` +
          `if this is a new cluster, start each of its members once with --bootstrap (members waiting here do not listen, so they cannot confirm each other)`,
      );
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new IdentityRefusedError(`refusing to start: the identity of ${opts.nodeId} could not be confirmed within ${maxWaitMs} ms`);
}

/**
 * One peer's cluster view, or — when it does not answer 200 with a view in time — why not, as text for the
 * log (e.g. "401 unauthorized: cluster secret does not match", "no view in the answer", a transport error).
 */
async function ask(opts: JoinIdentityOptions, peer: NodeId, timeoutMs: number): Promise<PeerView | string> {
  try {
    const res = await opts.forward(peer, new Request("http://edgekv.internal/v1/cluster"), AbortSignal.timeout(timeoutMs));
    if (res.status !== 200) {
      let detail = "";
      try {
        const e = ((await res.json()) as { error?: { code?: unknown; message?: unknown } })?.error;
        if (e && typeof e.code === "string") detail = ` ${e.code}: ${String(e.message)}`;
      } catch {
        // Not an API error body: the status alone says enough.
      }
      return `${res.status}${detail}`;
    }
    const v = (await res.json()) as PeerView;
    return Array.isArray(v?.members) && typeof v.selfId === "string" ? v : "no cluster view in the answer";
  } catch (err) {
    return (err as Error)?.message ?? String(err);
  }
}

/**
 * The view to believe: a leader's (highest term) knows the committed configuration; without one, the
 * most advanced follower's. A lagging member may still list a voter that was removed meanwhile.
 */
function pickAuthority(views: PeerView[]): PeerView | undefined {
  let best: PeerView | undefined;
  for (const v of views) {
    const isLeader = v.leaderId !== "" && v.leaderId === v.selfId;
    const bestIsLeader = best !== undefined && best.leaderId !== "" && best.leaderId === best.selfId;
    if (!best || (isLeader && (!bestIsLeader || v.term > best.term)) || (!isLeader && !bestIsLeader && v.commitIndex > best.commitIndex)) best = v;
  }
  return best;
}
