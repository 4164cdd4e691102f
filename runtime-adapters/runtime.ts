/**
 * Which JavaScript runtime is running this code: the one place edgekv asks (after unjs/std-env's idea of a
 * single runtime-detection file). Bun is tested first because Bun also defines `process`; Deno second
 * because Deno also defines `process` (node compatibility).
 */

/** The runtimes edgekv supports. */
export type RuntimeName = "bun" | "deno" | "node";

/** Returns the running runtime's name; anything that is neither Bun nor Deno is treated as Node. */
export function currentRuntime(): RuntimeName {
  const g = globalThis as { Bun?: unknown; Deno?: unknown };
  if (g.Bun !== undefined) return "bun";
  if (g.Deno !== undefined) return "deno";
  return "node";
}
