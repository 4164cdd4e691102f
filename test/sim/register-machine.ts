/**
 * The simulator's replicated state machine: a map of string registers with put and compare-and-swap,
 * plus the applied index. Kept tiny on purpose (the real KV layer needs SQLite); it is the thing every node
 * applies committed entries to, and its snapshot is the whole map.
 *
 * Durability model: the machine's state and applied index are written atomically after each apply (as a
 * real node's SQLite transaction does), so after a crash it restarts with exactly what it had applied.
 *
 * It also tracks the membership as of its applied index (applying confChange entries with the core's own
 * `applyConfChange`), which is what a snapshot taken at that index must record.
 */
import { applyConfChange } from "../../src/raft/confchange.ts";
import type { ConfChange, ConfState } from "../../src/raft/types.ts";

/** A command carried in a normal entry's data. `opId` identifies the client operation (unique per run). */
export type RegisterCommand =
  | { opId: string; kind: "put"; key: string; value: string }
  | { opId: string; kind: "cas"; key: string; expected: string | null; value: string };

/** What applying a command returned: `ok` is false only for a CAS whose expected value did not match. */
export interface ApplyResult {
  opId: string;
  ok: boolean;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Encodes a command as an entry payload (JSON, UTF-8). */
export function encodeCommand(cmd: RegisterCommand): Uint8Array {
  return encoder.encode(JSON.stringify(cmd));
}

/** Decodes an entry payload; returns undefined for the empty no-op. Throws on malformed JSON. */
export function decodeCommand(data: Uint8Array): RegisterCommand | undefined {
  if (data.length === 0) return undefined;
  return JSON.parse(decoder.decode(data)) as RegisterCommand;
}

/** A map of registers with its applied index. */
export class RegisterMachine {
  appliedIndex = 0;
  /** Term of the entry at `appliedIndex` (0 when nothing is applied), kept for snapshot metadata. */
  appliedTerm = 0;
  /** Membership as of appliedIndex. */
  confState: ConfState;
  private values = new Map<string, string>();

  /** @param confState the membership before any entry (the bootstrap voters, or empty for a joining node). */
  constructor(confState: ConfState) {
    this.confState = copyConf(confState);
  }

  /** Applies one committed command at `index`; returns the result. Throws if `index` is not appliedIndex + 1. */
  apply(index: number, term: number, cmd: RegisterCommand | undefined): ApplyResult | undefined {
    if (index !== this.appliedIndex + 1) throw new Error(`register machine: apply index ${index} after ${this.appliedIndex}`);
    this.appliedIndex = index;
    this.appliedTerm = term;
    if (cmd === undefined) return undefined;
    if (cmd.kind === "put") {
      this.values.set(cmd.key, cmd.value);
      return { opId: cmd.opId, ok: true };
    }
    const current = this.values.get(cmd.key) ?? null;
    if (current !== cmd.expected) return { opId: cmd.opId, ok: false };
    this.values.set(cmd.key, cmd.value);
    return { opId: cmd.opId, ok: true };
  }

  /**
   * Applies a confChange entry: no register changes, the membership moves on. `installs` is the entry's
   * own record of the membership it installs (Entry.confState); without it the change is computed from
   * the current membership. A node that joined with an empty log and replays from index 1 needs the
   * former: its own base membership is not the one the log started from.
   */
  applyConf(index: number, term: number, cc: ConfChange, installs?: ConfState): void {
    this.apply(index, term, undefined);
    this.confState = installs ? copyConf(installs) : applyConfChange(this.confState, cc);
  }

  /** The register's value, or null when unset. */
  get(key: string): string | null {
    return this.values.get(key) ?? null;
  }

  /** The whole state as a snapshot payload (keys sorted, so equal states give equal bytes). */
  snapshot(): Uint8Array {
    const pairs = [...this.values.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    return encoder.encode(JSON.stringify({ appliedIndex: this.appliedIndex, appliedTerm: this.appliedTerm, confState: this.confState, pairs }));
  }

  /** Replaces the state with a snapshot payload made by {@link snapshot}. Throws on malformed data. */
  restore(data: Uint8Array): void {
    const parsed = JSON.parse(decoder.decode(data)) as { appliedIndex: number; appliedTerm: number; confState: ConfState; pairs: [string, string][] };
    this.appliedIndex = parsed.appliedIndex;
    this.confState = copyConf(parsed.confState);
    this.appliedTerm = parsed.appliedTerm;
    this.values = new Map(parsed.pairs);
  }

  /** A deep copy (the durable copy a crash keeps). */
  clone(): RegisterMachine {
    const m = new RegisterMachine(this.confState);
    m.appliedIndex = this.appliedIndex;
    m.appliedTerm = this.appliedTerm;
    m.values = new Map(this.values);
    return m;
  }
}

function copyConf(cs: ConfState): ConfState {
  return { voters: [...cs.voters], votersOutgoing: [...cs.votersOutgoing], learners: [...cs.learners] };
}
