/**
 * Test fixtures for the KV state machine: a command "codec" that keeps commands in a registry and puts only
 * a 4-byte id in the entry (so these tests do not depend on src/codec), and a harness that wraps each
 * request in the next Raft entry and applies it.
 */
import { openTestDb } from "../helpers/sql.ts";
import { KvStateMachine, type AppliedEntry } from "../../src/kv/state-machine.ts";
import type { SqlDriver } from "../../src/kv/sql-driver.ts";
import type { Command, KvLimits, KvRequest, Session } from "../../src/kv/types.ts";
import type { Entry } from "../../src/raft/types.ts";

const registry: Command[] = [];

/** Registers a command and returns entry data naming it (4 bytes, big-endian id + 1). */
export function encodeTest(cmd: Command): Uint8Array {
  registry.push(cmd);
  const n = registry.length;
  return new Uint8Array([(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
}

/** Inverse of encodeTest; throws on data it did not produce (tests the bad_request path). */
export function decodeTest(data: Uint8Array): Command {
  if (data.length !== 4) throw new Error(`test codec: ${data.length} bytes`);
  const n = ((data[0] << 24) | (data[1] << 16) | (data[2] << 8) | data[3]) >>> 0;
  const cmd = registry[n - 1];
  if (cmd === undefined) throw new Error(`test codec: unknown id ${n}`);
  return cmd;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** UTF-8 bytes of a string. */
export function b(s: string): Uint8Array {
  return enc.encode(s);
}

/** A string from UTF-8 bytes. */
export function s(x: Uint8Array): string {
  return dec.decode(x);
}

/** Wraps a state machine and the next log index/term. */
export class Harness {
  nextIndex: number;
  term = 1;

  constructor(
    readonly driver: SqlDriver,
    readonly sm: KvStateMachine,
  ) {
    this.nextIndex = sm.appliedIndex() + 1;
  }

  /** Opens a fresh (or the given) file DB with the runtime's driver and a state machine on it. */
  static async open(path?: string, limits?: Partial<KvLimits>): Promise<Harness> {
    const driver = await openTestDb(path);
    return new Harness(driver, new KvStateMachine(driver, { decode: decodeTest, limits }));
  }

  /** A normal entry carrying `cmd` at the next index (not applied). */
  entry(cmd: Command): Entry {
    return { index: this.nextIndex++, term: this.term, type: "normal", data: encodeTest(cmd) };
  }

  /** Applies one request as the next entry and returns its outcome. */
  apply(request: KvRequest, session?: Session): AppliedEntry {
    const out = this.sm.applyEntries([this.entry(session ? { request, session } : { request })]);
    return out[0];
  }

  /** Applies one request and returns its result, throwing the entry's KvError if it failed. */
  ok<T = unknown>(request: KvRequest, session?: Session): T {
    const r = this.apply(request, session);
    if (r.error) throw r.error;
    return r.result as T;
  }

  /** Applies one request that must fail and returns its error. */
  fail(request: KvRequest, session?: Session) {
    const r = this.apply(request, session);
    if (!r.error) throw new Error(`expected an error, got ${JSON.stringify(r.result)}`);
    return r.error;
  }

  close(): void {
    this.driver.close();
  }
}
