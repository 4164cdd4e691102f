/**
 * The shape of a member's id and URLs as the membership API accepts them (`POST /v1/cluster/members`,
 * `PUT /v1/cluster/members/{id}`; src/api/wire.ts), in a module without dependencies so that the SDK
 * (src/client) checks the same rule before it sends a membership change. With src/kv/types.ts
 * (compareBytes), one of the two server modules the SDK imports at run time: both must stay free of
 * imports (test/unit/client.test.ts checks).
 */

/**
 * A member id: 1-64 letters, digits, '.', '_' or '-', but not "." or ".." (it is a URL path segment, and URL
 * parsing drops those: `DELETE /v1/cluster/members/..` would reach another route). Also a log field. The
 * node's own `--node-id` has this rule (src/config/schema.ts).
 */
export const MEMBER_ID_RE = /^(?!\.\.?$)[A-Za-z0-9._-]{1,64}$/;

/** A member's peer or client URL: http(s), a host (with optional port), an optional path; no spaces; ≤ 2048 characters. */
export const MEMBER_URL_RE = /^https?:\/\/[^\s/]+(\/[^\s]*)?$/;

/** Longest member URL accepted, characters. */
export const MEMBER_URL_MAX = 2048;

/** Why `url` is not a member URL (a sentence), or undefined when it is one. */
export function memberUrlProblem(url: string): string | undefined {
  if (url.length > MEMBER_URL_MAX) return `longer than ${MEMBER_URL_MAX} characters`;
  if (!MEMBER_URL_RE.test(url)) return "not an http(s) URL (http://host:port)";
  return undefined;
}
