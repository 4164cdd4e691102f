/**
 * Lowers the CPU priority of the calling thread, for background work on a worker thread (the off-loop
 * snapshot's VACUUM INTO). Why: on a machine whose cores the nodes' event loops keep busy, three members
 * each copying their database for ~2 s took CPU from the loops that answer requests and stretched the put
 * tails (docs/bench.md "History chain"). With a higher nice value the kernel's scheduler gives the copy
 * what the loops leave; it takes longer, and nothing waits for it.
 *
 * How: Linux schedules threads individually, and setpriority(2) with a thread id (from /proc/thread-self)
 * changes that thread only; `os.setPriority(tid, nice)` does that on Node, Bun and Deno alike. Elsewhere
 * (no /proc) nothing changes. Best effort: returns whether the priority was set, never throws.
 */
import { readlinkSync } from "node:fs";
import os from "node:os";

/** Sets the calling thread's nice value to `nice` (0..19; higher = lower priority). True when it did. */
export function lowerThreadPriority(nice: number): boolean {
  try {
    const tid = Number(readlinkSync("/proc/thread-self").split("/").pop());
    if (!Number.isInteger(tid) || tid <= 0) return false;
    os.setPriority(tid, nice);
    return true;
  } catch {
    return false;
  }
}
