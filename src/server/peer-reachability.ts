/**
 * Which peers this node cannot reach, and the log lines that say so: one `warn` when a peer's outbound
 * stream has stayed down for a grace period (with its URL and the last connection error), one when it is
 * open again, never one per reconnect attempt (the transport retries with backoff and logs each attempt at
 * debug only). A wrong `--peers` URL used to be silent at the default log level (H1 trial, 2026-11-30).
 * Pure: the caller passes the time (ms, any monotonic clock) and the transport's `peerStatus()`.
 */
import type { NodeId } from "../raft/types.ts";
import type { PeerStatus } from "./transport.ts";

/** One peer's outage as tracked: since when its stream is down (ms) and whether the outage was logged. */
interface Outage {
  sinceMs: number;
  logged: boolean;
}

/** Tracks outbound reachability per peer; see the module comment. */
export class PeerReachability {
  private readonly outages = new Map<NodeId, Outage>();

  /**
   * @param graceMs how long a peer's outbound stream must stay down before it is reported unreachable (ms);
   *   short outages (a peer restarting, a session being replaced) stay quiet.
   */
  constructor(private readonly graceMs: number) {}

  /**
   * Updates the state from `peers` at `nowMs` and returns the warn lines to log now (usually none). A peer
   * is reachable while `outbound === "open"`. Peers no longer listed are forgotten without a line.
   */
  observe(nowMs: number, peers: Record<NodeId, PeerStatus>): string[] {
    const lines: string[] = [];
    for (const id of this.outages.keys()) if (!(id in peers)) this.outages.delete(id);
    for (const [id, p] of Object.entries(peers)) {
      const outage = this.outages.get(id);
      if (p.outbound === "open") {
        if (outage?.logged) lines.push(`peer ${id} (${p.url}) is reachable again after ${Math.round(nowMs - outage.sinceMs)} ms`);
        this.outages.delete(id);
        continue;
      }
      if (!outage) {
        this.outages.set(id, { sinceMs: nowMs, logged: false });
        continue;
      }
      if (!outage.logged && nowMs - outage.sinceMs >= this.graceMs) {
        outage.logged = true;
        const why = p.lastError || `stream ${p.outbound}`;
        lines.push(`peer ${id} (${p.url}) is unreachable: ${why}; retrying in the background (check --peers and that the peer runs; logged again once it is reachable)`);
      }
    }
    return lines;
  }

  /** How long (ms) the outbound stream to `id` has been down at `nowMs`; 0 while it is open or unknown. */
  downForMs(id: NodeId, nowMs: number): number {
    const outage = this.outages.get(id);
    return outage ? nowMs - outage.sinceMs : 0;
  }
}
