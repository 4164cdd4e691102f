/**
 * The services the API/SDK tests run against: the in-memory STUB and the real KvStateMachine
 * (api-kv-service.ts). Test files loop over `SERVICE_KINDS` so each route is checked on both.
 */
import { SmKvService } from "./api-kv-service.ts";
import { StubKvService } from "./api-stub-service.ts";

export { closeAllSmServices } from "./api-kv-service.ts";

/** A named factory of a test service (both expose the stub's hooks: calls, failNext, ready, rev). */
export interface ServiceKind {
  name: "stub" | "kv";
  make(): Promise<StubKvService>;
}

export const SERVICE_KINDS: ServiceKind[] = [
  { name: "stub", make: async () => new StubKvService() },
  { name: "kv", make: () => SmKvService.open() },
];
