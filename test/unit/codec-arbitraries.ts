/** fast-check generators of Raft messages for codec tests, and a helper to compare byte fields across runtimes. */
import fc from "fast-check";
import type { ConfState, Entry, Message } from "../../src/raft/types.ts";

const id = fc.constantFrom("n1", "n2", "n3", "learner-9");
const idx = fc.nat({ max: 2 ** 40 });
const bytes = fc.uint8Array({ maxLength: 64 });
const confState: fc.Arbitrary<ConfState> = fc.record({ voters: fc.array(id, { maxLength: 3 }), votersOutgoing: fc.array(id, { maxLength: 3 }), learners: fc.array(id, { maxLength: 2 }) });
const entry: fc.Arbitrary<Entry> = fc.oneof(
  fc.record({ index: idx, term: idx, type: fc.constant("normal" as const), data: bytes }),
  fc.record({
    index: idx,
    term: idx,
    type: fc.constant("confChange" as const),
    data: fc.constant(new Uint8Array(0)),
    confChange: fc.record({ steps: fc.array(fc.record({ type: fc.constantFrom("addLearner" as const, "promote" as const, "remove" as const), nodeId: id }), { maxLength: 3 }) }),
  }),
);
const base = { from: id, to: id, term: idx };

/** Any Raft message (every variant of `Message`). */
export const arbMessage: fc.Arbitrary<Message> = fc.oneof(
  fc.record({ ...base, type: fc.constant("appendEntries" as const), prevLogIndex: idx, prevLogTerm: idx, entries: fc.array(entry, { maxLength: 4 }), commit: idx }),
  fc.record({ ...base, type: fc.constant("appendEntriesResponse" as const), success: fc.boolean(), matchIndex: idx, rejectIndex: idx, conflictIndex: idx, conflictTerm: idx }),
  fc.record({ ...base, type: fc.constant("requestVote" as const), preVote: fc.boolean(), lastLogIndex: idx, lastLogTerm: idx, leadershipTransfer: fc.boolean() }),
  fc.record({ ...base, type: fc.constant("requestVoteResponse" as const), preVote: fc.boolean(), granted: fc.boolean() }),
  fc.record({ ...base, type: fc.constant("heartbeat" as const), commit: idx, readSeq: idx }),
  fc.record({ ...base, type: fc.constant("heartbeatResponse" as const), readSeq: idx }),
  fc.record({ ...base, type: fc.constant("installSnapshot" as const), snapshot: fc.record({ meta: fc.record({ index: idx, term: idx, confState }), data: bytes }) }),
  fc.record({ ...base, type: fc.constant("timeoutNow" as const) }),
  fc.record({ ...base, type: fc.constant("readIndex" as const), requestIds: fc.array(fc.string(), { maxLength: 3 }) }),
  fc.record({ ...base, type: fc.constant("readIndexResponse" as const), requestIds: fc.array(fc.string(), { maxLength: 3 }), index: idx }),
);

/** Deep copy with every Uint8Array (incl. Node's Buffer) turned into a plain Uint8Array, for deepEqual. */
export function plainBytes<T>(v: T): T {
  if (v instanceof Uint8Array) return new Uint8Array(v) as T;
  if (Array.isArray(v)) return v.map(plainBytes) as T;
  if (typeof v === "object" && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plainBytes(x)])) as T;
  return v;
}
