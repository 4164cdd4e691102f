/**
 * Snapshots off the event loop (issue #6): `VACUUM INTO` of the whole database takes 0.3-0.7 s at 100k keys
 * and seconds at 1M (docs/bench.md "Storage"); run on the node's own connection it stalls every write for
 * that long. Here it runs in a node:worker_threads worker on a second connection
 * (runtime-adapters/snapshot-worker.ts), so the apply loop keeps going; the copy is the state at the start of
 * the worker's read transaction and names its own index (src/kv/snapshot.ts `checkLive: false`).
 *
 * Bun and Deno load the TypeScript worker file directly. Node 20 cannot, and a worker does not inherit the
 * parent's `--import tsx` hooks in time for its entry module, so on Node the worker is a one-line eval that
 * loads the file through tsx's `tsImport`.
 */
import { Worker } from "node:worker_threads";
import type { SnapshotInfo } from "../src/kv/snapshot.ts";
import { currentRuntime } from "./runtime.ts";
import type { SnapshotWorkerJob } from "./snapshot-worker.ts";

const WORKER_URL = new URL("./snapshot-worker.ts", import.meta.url);

/**
 * Starts a node:worker_threads worker running the TypeScript module at `url` with `workerData` (Bun and Deno
 * load it directly; Node through tsx's `tsImport`, see the file comment). Throws what `new Worker` throws.
 */
export function startTsWorker(url: URL, workerData: unknown): Worker {
  if (currentRuntime() !== "node") return new Worker(url, { workerData });
  const api = import.meta.resolve("tsx/esm/api");
  const code = `import(${JSON.stringify(api)}).then((m) => m.tsImport(${JSON.stringify(url.href)}, ${JSON.stringify(url.href)}))`;
  return new Worker(code, { eval: true, workerData });
}

function startWorker(job: SnapshotWorkerJob): Worker {
  return startTsWorker(WORKER_URL, job);
}

/**
 * Makes a snapshot of the database at `dbPath` into `dir` on a worker thread and resolves with its info
 * (`meta.index` is whatever applied index the copy caught: at least the one at the call). Rejects with the
 * worker's error (SQL, fs, worker start-up); the database is unchanged then, a temp file may remain (the
 * next prune removes it). `timeoutMs` (default 10 min) bounds a stuck worker: it is terminated and the
 * promise rejects.
 */
export function createSnapshotOffLoop(dbPath: string, dir: string, opts: { keep?: number; timeoutMs?: number } = {}): Promise<SnapshotInfo> {
  return new Promise<SnapshotInfo>((resolve, reject) => {
    let settled = false;
    const worker = startWorker({ dbPath, dir, keep: opts.keep });
    const finish = (err: Error | undefined, info?: SnapshotInfo) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      void worker.terminate();
      if (err) reject(err);
      else resolve(info!);
    };
    const timer = setTimeout(() => finish(new Error(`snapshot worker did not finish within ${opts.timeoutMs ?? 600_000} ms`)), opts.timeoutMs ?? 600_000);
    worker.on("message", (m: { ok: true; info: SnapshotInfo } | { ok: false; message: string }) => {
      if (m.ok) finish(undefined, m.info);
      else finish(new Error(`snapshot worker: ${m.message}`));
    });
    worker.on("error", (err: Error) => finish(err));
    worker.on("exit", (code: number) => finish(new Error(`snapshot worker exited with code ${code} before answering`)));
  });
}
