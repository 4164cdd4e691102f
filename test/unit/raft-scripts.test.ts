/**
 * Runs the interaction scripts in test/raft-scripts/*.txt: each `> command` must print exactly the lines
 * that follow it. To see the actual transcript of a failing script, compare the assertion's two texts.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { runScript } from "../helpers/raft-script.ts";

const dir = new URL("../raft-scripts", import.meta.url).pathname;
const normalize = (s: string) => s.split("\n").map((l) => l.trimEnd()).join("\n").trim();

describe("raft interaction scripts", () => {
  for (const name of readdirSync(dir).filter((f) => f.endsWith(".txt")).sort()) {
    it(name, () => {
      const text = readFileSync(join(dir, name), "utf8");
      assert.equal(normalize(runScript(text)), normalize(text));
    });
  }
});
