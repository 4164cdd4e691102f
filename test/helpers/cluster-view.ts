/**
 * Reading a node's cluster view (`GET /v1/cluster`, docs/api.md) from tests, shared by the real-process
 * harnesses (test/helpers/cluster.ts and test/nemesis/cluster.ts). The shape is the API's own
 * `ClusterView` (src/api/service.ts), so a field renamed there breaks the type-check here, not a test run.
 */
import type { ClusterView, MemberInfo } from "../../src/api/service.ts";

export type { ClusterView, MemberInfo };

/** GET `url` as JSON within `timeoutMs`; undefined on a network error, a deadline, a non-2xx status or bad JSON. */
export async function getJson<T = unknown>(url: string, timeoutMs: number): Promise<T | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) {
      await res.body?.cancel();
      return undefined;
    }
    return (await res.json()) as T;
  } catch {
    return undefined;
  }
}

/** `GET <baseUrl>/v1/cluster` (default deadline 1 s); undefined when the node does not answer 200 in time. */
export function fetchClusterView(baseUrl: string, timeoutMs = 1000): Promise<ClusterView | undefined> {
  return getJson<ClusterView>(`${baseUrl}/v1/cluster`, timeoutMs);
}

/** Ids of the members `view` lists with `role` (sorted), e.g. the voters. */
export function memberIds(view: ClusterView, role: MemberInfo["role"]): string[] {
  return view.members.filter((m) => m.role === role).map((m) => m.id).sort();
}
