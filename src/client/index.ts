/**
 * Public entry of the edgekv SDK (docs/client.md): `EdgeKvClient`, its typed errors and result types.
 * Browser-safe: fetch, TextEncoder, AbortSignal and cbor-x only.
 */
export { EdgeKvClient, type EdgeKvClientOptions, type ReadOptions } from "./client.ts";
export * from "./errors.ts";
export * from "./types.ts";
export { CLIENT_DEFAULTS, MAX_REDIRECTS, type CallOptions, type RetryPolicy } from "./transport.ts";
export { validateTxnRequest } from "./txn-validate.ts";
