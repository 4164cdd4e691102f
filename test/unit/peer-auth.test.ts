/**
 * Peer admission (docs/peer-protocol.md "Admission"): protocol, cluster id, secret and addressee checks,
 * including the empty secret that local clusters may use (HTTP trims the sender's "Bearer " to "Bearer").
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { admissionProblem } from "../../runtime-adapters/shared/peer-auth.ts";
import { PEER_HEADERS } from "../../src/server/transport.ts";
import { PEER_PROTOCOL_VERSION } from "../../src/codec/frame.ts";

function headers(auth: string, extra: Record<string, string> = {}): (n: string) => string | undefined {
  const h: Record<string, string> = { [PEER_HEADERS.protocol]: String(PEER_PROTOCOL_VERSION), [PEER_HEADERS.cluster]: "c1", [PEER_HEADERS.from]: "n2", [PEER_HEADERS.to]: "n1", authorization: auth, ...extra };
  return (n) => h[n];
}

describe("peer admission", () => {
  const self = { nodeId: "n1", clusterId: "c1", clusterSecret: "s3cret-s3cret-s3cret" };

  it("admits a request with the right protocol, cluster, secret and addressee", () => {
    assert.equal(admissionProblem(self, headers("Bearer s3cret-s3cret-s3cret")), undefined);
  });

  it("refuses a wrong secret, a wrong cluster and a wrong protocol with their codes", () => {
    assert.equal(admissionProblem(self, headers("Bearer nope"))?.[1], "unauthorized");
    assert.equal(admissionProblem(self, headers("Bearer s3cret-s3cret-s3cret", { [PEER_HEADERS.cluster]: "other" }))?.[1], "cluster_mismatch");
    assert.equal(admissionProblem(self, headers("Bearer s3cret-s3cret-s3cret", { [PEER_HEADERS.protocol]: "99" }))?.[1], "protocol_mismatch");
  });

  it("admits the empty local secret even though HTTP trimmed the header to 'Bearer'", () => {
    const open = { ...self, clusterSecret: "" };
    assert.equal(admissionProblem(open, headers("Bearer")), undefined);
    assert.equal(admissionProblem(open, headers("Bearer ")), undefined);
    assert.equal(admissionProblem(open, headers("Bearer x"))?.[1], "unauthorized");
  });

  it("counts a missing authorization header as the empty secret only (node:http2 drops a 'Bearer ' value)", () => {
    const h = (n: string) => (n === "authorization" ? undefined : headers("")(n));
    assert.equal(admissionProblem({ ...self, clusterSecret: "" }, h), undefined);
    assert.equal(admissionProblem(self, h)?.[1], "unauthorized");
  });
});
