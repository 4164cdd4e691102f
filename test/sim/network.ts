/**
 * The simulated network between Raft nodes: every message gets a delivery tick drawn from the fault mix
 * (delay, which also reorders), may be lost or duplicated, and is dropped at delivery time when its
 * directed link is cut. Cuts are directed so one-way (asymmetric) partitions are possible. Delivery order
 * is (deliveryTick, send sequence number): no Map/Set iteration order is involved, so runs are
 * byte-for-byte reproducible on every runtime.
 */
import type { Message, NodeId } from "../../src/raft/types.ts";
import type { SimRng } from "./sim-rng.ts";

/** The per-seed network faults (swarm testing: each seed draws its own mix). Probabilities in per-mille. */
export interface NetworkFaults {
  lossPerMille: number;
  duplicatePerMille: number;
  /** Each message is delayed by a number of ticks drawn from [delayTicksMin, delayTicksMax]. */
  delayTicksMin: number;
  delayTicksMax: number;
  /** Probability that one message gets an extra long delay (reordering well past the usual window). */
  longDelayPerMille: number;
  longDelayTicksMax: number;
  /**
   * False (default): a lost message is reported to the sender's transport (reportUnreachable), as over
   * HTTP/2 a send either arrives or fails the stream. True: loss is silent, like a dropped UDP packet
   * (`--silent-loss`; see FINDINGS.md #1).
   */
  silentLoss?: boolean;
}

/** No faults: used in the liveness phase. One-tick delay keeps the message flow realistic. */
export const HEALED: NetworkFaults = {
  lossPerMille: 0,
  duplicatePerMille: 0,
  delayTicksMin: 0,
  delayTicksMax: 1,
  longDelayPerMille: 0,
  longDelayTicksMax: 0,
};

interface InFlight {
  deliverAtTick: number;
  seq: number;
  message: Message;
}

/** Counters for the end-of-run summary. */
export interface NetworkStats {
  sent: number;
  delivered: number;
  lost: number;
  duplicated: number;
  cut: number;
}

/** The simulated network. Not thread-safe (there are no threads). */
export class SimNetwork {
  faults: NetworkFaults;
  readonly stats: NetworkStats = { sent: 0, delivered: 0, lost: 0, duplicated: 0, cut: 0 };
  private queue: InFlight[] = [];
  private seq = 0;
  /** Non-snapshot messages lost on the wire and not silently (see NetworkFaults.silentLoss); drained by the simulator. */
  readonly lostMessages: Message[] = [];
  /** InstallSnapshot messages lost or cut, for the sender's reportSnapshot(to, false); drained by the simulator. */
  readonly droppedSnapshots: Message[] = [];
  /** Non-snapshot messages dropped at a cut link (the sender's transport would notice); drained by the simulator. */
  readonly cutMessages: Message[] = [];
  /** Cut directed links, as "from>to". */
  private cuts = new Set<string>();

  constructor(
    private readonly rng: SimRng,
    faults: NetworkFaults,
  ) {
    this.faults = faults;
  }

  /** Queues `message` for delivery no earlier than `nowTick` (+ the drawn delay). */
  send(message: Message, nowTick: number): void {
    this.stats.sent++;
    const f = this.faults;
    if (this.rng.chance(f.lossPerMille)) {
      this.stats.lost++;
      if (message.type === "installSnapshot") this.droppedSnapshots.push(message);
      else if (!f.silentLoss) this.lostMessages.push(message);
      return;
    }
    const copies = this.rng.chance(f.duplicatePerMille) ? 2 : 1;
    if (copies === 2) this.stats.duplicated++;
    for (let i = 0; i < copies; i++) {
      let delay = this.rng.range(f.delayTicksMin, f.delayTicksMax);
      if (this.rng.chance(f.longDelayPerMille)) delay += this.rng.range(1, Math.max(1, f.longDelayTicksMax));
      this.insert({ deliverAtTick: nowTick + delay, seq: this.seq++, message });
    }
  }

  /**
   * Removes and returns the next message due at or before `nowTick` whose link is not cut, or undefined.
   * Messages over a cut link are dropped when they fall due (a partition loses what is in the wire).
   */
  next(nowTick: number): Message | undefined {
    if (!this.peekDue(nowTick)) return undefined;
    const item = this.queue.shift()!;
    this.stats.delivered++;
    return item.message;
  }

  /**
   * The (tick, sequence number) of the message {@link next} would return now, or undefined; drops the due
   * messages over cut links on the way (as `next` does). The simulator orders its other timed events
   * (persist completions) against it.
   */
  peekDue(nowTick: number): { tick: number; seq: number } | undefined {
    // The queue is kept sorted by (deliverAtTick, seq), so the head is the next due message.
    while (this.queue.length > 0 && this.queue[0].deliverAtTick <= nowTick) {
      const item = this.queue[0];
      if (this.cuts.has(item.message.from + ">" + item.message.to)) {
        this.queue.shift();
        this.stats.cut++;
        if (item.message.type === "installSnapshot") this.droppedSnapshots.push(item.message);
        else this.cutMessages.push(item.message);
        continue;
      }
      return { tick: item.deliverAtTick, seq: item.seq };
    }
    return undefined;
  }

  /** A sequence number from the same counter as messages, for an event ordered among them (same tick: by seq). */
  reserveSeq(): number {
    return this.seq++;
  }

  /** Inserts keeping (deliverAtTick, seq) order; seq only grows, so ties go after existing items. */
  private insert(item: InFlight): void {
    let lo = 0;
    let hi = this.queue.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.queue[mid].deliverAtTick <= item.deliverAtTick) lo = mid + 1;
      else hi = mid;
    }
    this.queue.splice(lo, 0, item);
  }

  /** Drops every queued message to or from `id` (a crash loses what was in its buffers). */
  dropNode(id: NodeId): void {
    this.queue = this.queue.filter((q) => q.message.to !== id && q.message.from !== id);
  }

  /** Cuts the directed link from -> to. */
  cut(from: NodeId, to: NodeId): void {
    this.cuts.add(from + ">" + to);
  }

  /** Heals every cut link. */
  healAll(): void {
    this.cuts.clear();
  }

  /** True when from -> to is cut. */
  isCut(from: NodeId, to: NodeId): boolean {
    return this.cuts.has(from + ">" + to);
  }

  /** The cut links, sorted (for the trace). */
  describeCuts(): string {
    return [...this.cuts].sort().join(" ");
  }

  /** Messages in flight. */
  get inFlight(): number {
    return this.queue.length;
  }
}
