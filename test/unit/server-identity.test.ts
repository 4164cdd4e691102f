/**
 * The join identity check (src/server/identity.ts, docs/scenarios.md C13) says in its waiting log line and in its
 * final refusal why the members did not answer — a wrong cluster secret otherwise looks like a silent hang.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { IdentityRefusedError, checkJoinIdentity } from "../../src/server/identity.ts";

const refusal = () =>
  new Response(JSON.stringify({ error: { code: "unauthorized", message: "cluster secret does not match" } }), { status: 401, headers: { "content-type": "application/json" } });

describe("server identity check: why the members did not answer", () => {
  it("names each member's refusal in the waiting log line, then joins once a member answers", async () => {
    const logs: string[] = [];
    let calls = 0;
    await checkJoinIdentity({
      nodeId: "n4",
      peerIds: ["n1", "n2"],
      forward: async (to) => {
        calls++;
        if (to === "n1") throw new Error("forward to n1 refused: 401 unauthorized: cluster secret does not match");
        if (calls < 6) return refusal();
        return new Response(JSON.stringify({ selfId: "n2", leaderId: "n2", term: 3, commitIndex: 9, members: [{ id: "n2", role: "voter" }, { id: "n4", role: "learner" }] }));
      },
      log: (_level, msg) => logs.push(msg),
      roundEveryMs: 5,
      logEveryMs: 0,
      maxWaitMs: 10_000,
    });
    const waiting = logs.find((l) => l.startsWith("waiting for a member"));
    assert.ok(waiting, logs.join("\n"));
    assert.match(waiting, /\(n1: forward to n1 refused: 401 unauthorized: cluster secret does not match; n2: 401 unauthorized: cluster secret does not match\); /);
    // Members started without --bootstrap wait here for each other forever (U5): the line says what starts a new cluster.
    assert.match(waiting, /if this is a new cluster, start each of its members once with --bootstrap/);
  });

  it("a node the cluster does not list at all says how to add it; a listed learner joins without that line", async () => {
    const run = async (members: Array<{ id: string; role: string }>) => {
      const logs: string[] = [];
      await checkJoinIdentity({
        nodeId: "n4",
        peerIds: ["n1"],
        forward: async () => new Response(JSON.stringify({ selfId: "n1", leaderId: "n1", term: 2, commitIndex: 5, members })),
        log: (level, msg) => logs.push(`${level} ${msg}`),
        roundEveryMs: 5,
        maxWaitMs: 10_000,
      });
      return logs;
    };
    const absent = await run([{ id: "n1", role: "voter" }]);
    assert.equal(absent.length, 1, absent.join("\n"));
    assert.match(absent[0], /^warn member n1 does not list n4 as a member: it waits until it is added \(edgekv members add n4 /);
    assert.deepEqual(await run([{ id: "n1", role: "voter" }, { id: "n4", role: "learner" }]), []);
  });

  it("gives the reasons in the refusal when no member answered in time", async () => {
    await assert.rejects(
      checkJoinIdentity({ nodeId: "n4", peerIds: ["n1"], forward: async () => refusal(), log: () => {}, roundEveryMs: 5, maxWaitMs: 20 }),
      (e: unknown) => e instanceof IdentityRefusedError && /n1: 401 unauthorized: cluster secret does not match/.test(e.message),
    );
  });
});
