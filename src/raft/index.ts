/** The Raft core's public surface: the node, its in-memory storage, the PRNG, membership arithmetic and types. */
export * from "./types.ts";
export { createRng } from "./rng.ts";
export { MemoryStorage } from "./memory-storage.ts";
export { RaftNode } from "./raw-node.ts";
export { applyConfChange, allMembers, emptyConfState, isJoint, isVoter } from "./confchange.ts";
