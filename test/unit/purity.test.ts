/**
 * src/raft and src/kv must stay pure: no runtime modules, no runtime globals, no clock and no unseeded
 * randomness (DESIGN.md "Layers"). tsconfig.pure.json type-checks them against a runtime-free lib; this
 * test additionally scans the source text so a forbidden use is caught even where types would allow it.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

const root = new URL("../..", import.meta.url).pathname;
const FORBIDDEN: Array<[string, RegExp]> = [
  ["runtime module import", /from\s+["'](node:|bun:|npm:|jsr:)|import\(["'](node:|bun:)/],
  ["Deno global", /\bDeno\./],
  ["process global", /\bprocess\./],
  ["Buffer", /\bBuffer\b/],
  ["wall clock", /Date\.now\(|new Date\(|performance\.now\(/],
  ["unseeded randomness", /Math\.random\(/],
  ["timer", /\bsetTimeout\(|\bsetInterval\(|\bqueueMicrotask\(/],
];

function sources(dir: string): string[] {
  const out: string[] = [];
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  for (const n of names) {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else if (n.endsWith(".ts")) out.push(p);
  }
  return out;
}

/** Returns "file:line: kind" for each forbidden use in the given source text (comments skipped). */
export function findImpurities(file: string, text: string): string[] {
  const hits: string[] = [];
  text.split("\n").forEach((line, i) => {
    const t = line.trim();
    if (t.startsWith("//") || t.startsWith("*") || t.startsWith("/*")) return;
    for (const [kind, re] of FORBIDDEN) if (re.test(line)) hits.push(`${file}:${i + 1}: ${kind}`);
  });
  return hits;
}

describe("pure layers", () => {
  it("the scanner flags each kind of forbidden use", () => {
    const bad = 'import fs from "node:fs";\nconst t = Date.now();\nconst r = Math.random();\nDeno.exit(1);\nprocess.exit(1);\nBuffer.from("x");\nsetTimeout(f, 1);';
    assert.equal(findImpurities("x.ts", bad).length, 7);
    assert.deepEqual(findImpurities("x.ts", "// Date.now() is banned here\nconst a = 1;"), []);
  });

  it("src/raft and src/kv use nothing runtime-specific", () => {
    const files = [...sources(join(root, "src/raft")), ...sources(join(root, "src/kv"))];
    const hits = files.flatMap((f) => findImpurities(f.slice(root.length), readFileSync(f, "utf8")));
    assert.deepEqual(hits, []);
  });
});
