/**
 * scripts/bench/report.ts `parseCellSpec`: the cell specs of `npm run bench -- --cells` and of
 * scripts/bench/probe.ts (`put@64`, `f:stale@64`) map to the role, scenario and connection count that the
 * bench runs, and anything else is refused (undefined), so a typo is a usage error, not a silent default.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseCellSpec } from "../../scripts/bench/report.ts";

describe("bench cell specs", () => {
  it("reads scenario, connections and the follower prefix", () => {
    assert.deepEqual(parseCellSpec("put@64"), { role: "leader", scenario: "put", conns: 64 });
    assert.deepEqual(parseCellSpec("f:put@256"), { role: "follower", scenario: "put", conns: 256 });
    assert.deepEqual(parseCellSpec("stale@1"), { role: "leader", scenario: "get-serializable", conns: 1 });
    assert.deepEqual(parseCellSpec("get@16"), { role: "leader", scenario: "get", conns: 16 });
    assert.deepEqual(parseCellSpec("f:mix@64"), { role: "follower", scenario: "mix", conns: 64 });
  });

  it("refuses unknown scenarios, zero or missing connections, other prefixes and padding", () => {
    for (const bad of ["", "put", "put@", "put@0", "put@-1", "put@6.5", "delete@64", "l:put@64", "F:put@64", " put@64", "put@64x"]) {
      assert.equal(parseCellSpec(bad), undefined, bad);
    }
  });
});
