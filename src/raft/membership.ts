/**
 * Tracks the membership in force as the log changes: a conf entry takes effect as soon as it is appended
 * and is undone when a new leader truncates it (Raft thesis §4.1). Keeps the conf entries that could still
 * be truncated (above the commit index) on top of a base membership.
 */
import { applyConfChange, emptyConfState } from "./confchange.ts";
import type { ConfState, Entry } from "./types.ts";

/** The membership of a log: a base (snapshot or bootstrap) plus the conf entries appended after it. */
export class ConfTracker {
  private base: ConfState;
  /** Conf entries after the base, oldest first, each with the membership it installs. */
  private entries: Array<{ index: number; cs: ConfState }> = [];
  current: ConfState;

  constructor(base: ConfState = emptyConfState()) {
    this.base = base;
    this.current = base;
  }

  /** Replaces everything with `cs` (a snapshot was installed). */
  reset(cs: ConfState): void {
    this.base = cs;
    this.entries = [];
    this.current = cs;
  }

  /**
   * The log is about to be truncated from `index` on: reverts to the newest conf entry below it, else the
   * base. Returns true when the membership changed.
   */
  truncateFrom(index: number): boolean {
    if (!this.entries.some((c) => c.index >= index)) return false;
    this.entries = this.entries.filter((c) => c.index < index);
    const latest = this.entries[this.entries.length - 1];
    this.current = latest ? latest.cs : this.base;
    return true;
  }

  /**
   * Records the conf entries among `appended`. An entry's `confState` (filled in by the leader) wins, so a
   * node that joined with an empty membership learns the full one; otherwise the change is applied to the
   * current membership. Returns true when the membership changed. Throws RaftError("invariant") on an
   * invalid change without `confState`.
   */
  track(appended: Entry[]): boolean {
    let changed = false;
    for (const e of appended) {
      if (e.type !== "confChange") continue;
      const cs = e.confState ?? applyConfChange(this.current, e.confChange ?? { steps: [] });
      this.entries.push({ index: e.index, cs });
      this.current = cs;
      changed = true;
    }
    return changed;
  }

  /** Committed conf entries can never be truncated: folds all but the ones above `committed` into the base. */
  fold(committed: number): void {
    while (this.entries.length > 0 && this.entries[0]!.index <= committed) this.base = this.entries.shift()!.cs;
  }
}
