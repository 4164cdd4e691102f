/**
 * Watches served from the applied watch history (src/kv `eventsSince`). A watcher never holds a private
 * copy of events: it pages through the history table from its next revision whenever the node signals
 * that something was applied, so memory stays bounded by one page per watcher, a slow watcher can never
 * make the node buffer, and resuming from a revision is the same code path as catching up (no gap between
 * "history" and "live", docs/scenarios.md C05).
 */
import type { KvStateMachine } from "../kv/state-machine.ts";
import type { WatchMessage, WatchRequest } from "../api/service.ts";

/** Most events per page read from the history table. */
const PAGE_EVENTS = 1000;
/** Bytes (keys + values) of one page: the history table's lengths size each page before values are read. */
export const WATCH_PAGE_MAX_BYTES = 1024 * 1024;

/** Wakes every waiting watcher when the applied revision moves. */
export class WatchHub {
  private waiting = new Set<() => void>();

  /** Number of watchers currently parked. */
  get parked(): number {
    return this.waiting.size;
  }

  /** Called by the node after each applied batch that changed the revision (and on shutdown). */
  notify(): void {
    const ws = this.waiting;
    this.waiting = new Set();
    for (const w of ws) w();
  }

  /** Resolves on the next `notify`, after `timeoutMs`, or when `signal` aborts, whichever comes first. */
  wait(timeoutMs: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        this.waiting.delete(done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      signal.addEventListener("abort", done, { once: true });
      this.waiting.add(done);
    });
  }
}

/**
 * The message stream of one watch. The first page is read before this returns, so a compacted
 * `fromRevision` or an invalid range throws here (KvError `compacted` / `bad_request`) rather than later.
 * A progress message goes out as soon as nothing is left to replay (caught up), then after each
 * `progressIntervalMs` without events; never at a revision below `fromRevision - 1` (a node behind the
 * watch's start waits until it gets there). Ends when `signal` aborts.
 */
export function openWatch(kv: KvStateMachine, hub: WatchHub, req: WatchRequest, signal: AbortSignal, defaultProgressMs: number): AsyncIterable<WatchMessage> {
  let next = req.fromRevision ?? kv.revision() + 1;
  // Pages are bounded in bytes, not just events: 1000 events of 500 KB held per watcher froze a node.
  const first = kv.eventsSince(next, req.key, req.rangeEnd, PAGE_EVENTS, WATCH_PAGE_MAX_BYTES);
  const progressMs = req.progressIntervalMs ?? defaultProgressMs;
  return {
    async *[Symbol.asyncIterator]() {
      let page = first;
      let lastSent = Date.now();
      // The first time the watch has nothing left to replay it says so at once (a progress at the store's
      // revision), so a client learns "caught up" without waiting a whole interval (new-user finding U4).
      let caughtUp = false;
      while (!signal.aborted) {
        if (page.events.length > 0) {
          const last = page.events[page.events.length - 1].kv.modRevision;
          yield { type: "events", revision: last, events: page.events };
          lastSent = Date.now();
          next = page.nextRevision;
        } else {
          next = Math.max(next, page.nextRevision);
          // A node behind the watch's start (fromRevision past its store, e.g. a client resuming on a member
          // still catching up) says nothing until it gets there: a progress at its lower revision told the
          // client "delivered up to X" below what it already had, and moved its resume point back (B7 P3).
          const behindStart = page.revision < next - 1;
          if (!behindStart && (!caughtUp || Date.now() - lastSent >= progressMs)) {
            caughtUp = true;
            yield { type: "progress", revision: page.revision };
            lastSent = Date.now();
          }
          await hub.wait(Math.max(1, progressMs - (Date.now() - lastSent)), signal);
        }
        if (signal.aborted) return;
        page = kv.eventsSince(next, req.key, req.rangeEnd, PAGE_EVENTS, WATCH_PAGE_MAX_BYTES);
      }
    },
  };
}
