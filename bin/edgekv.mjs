#!/usr/bin/env node
// edgekv CLI launcher. Bun and Deno run TypeScript natively; Node 20 cannot, so tsx's ESM loader is
// registered first (tsx is therefore a runtime dependency). See docs/client.md "CLI".
if (typeof globalThis.Bun === "undefined" && typeof globalThis.Deno === "undefined") {
  const { register } = await import("tsx/esm/api");
  register();
}
await import("../src/cli/bin.ts");
