/**
 * How `npm test` (scripts/test-all.ts) spreads one runtime's test files over lanes that run side by side,
 * and the simulator's seeds over shards. Pure functions over repo-relative paths (`test/unit/x.test.ts`).
 *
 * Why lanes: on the 2-core CI machine a runtime's phase was ~17 min (Node) of which most is waiting —
 * real node processes starting, elections, fault schedules, fixed quiet periods — not CPU. Why one lane
 * for the real clusters: the nemesis runs and the multi-process cluster tests have bounds on recovery
 * and elections; two of them at once on 2 cores would make those bounds the thing under test.
 */

/**
 * Files that start whole clusters of real node processes with fault schedules or election/restart bounds.
 * They all go to lane 1, one after another. A prefix matches a folder.
 */
export const CLUSTER_FILES: readonly string[] = [
  "test/nemesis/",
  "test/integration/cluster.test.ts",
  "test/integration/cluster-script.test.ts",
  "test/integration/membership-readiness.test.ts",
];

/**
 * Wall seconds of the slow files (>= 5 s) in one Node phase on the 2-core CI machine (2026-11-30, load 4-21
 * from other work; entry.test.ts without the ~55 s its left-over timer held it open). Only their ratios
 * matter: they balance the lanes. A file not listed counts {@link DEFAULT_FILE_SECONDS}.
 */
export const FILE_SECONDS: Readonly<Record<string, number>> = {
  "test/nemesis/scenarios.test.ts": 171,
  "test/nemesis/nemesis-short.test.ts": 150,
  "test/integration/crash.test.ts": 115,
  "test/nemesis/ack-before-fsync.test.ts": 92,
  "test/integration/cluster.test.ts": 65,
  "test/integration/entry.test.ts": 62,
  "test/nemesis/membership.test.ts": 55,
  "test/nemesis/stale-read.test.ts": 33,
  "test/integration/transport.test.ts": 31,
  "test/integration/bench-scripts.test.ts": 30,
  "test/nemesis/membership-cycle.test.ts": 27,
  "test/integration/cluster-script.test.ts": 25,
  "test/integration/node-inprocess.test.ts": 22,
  "test/integration/data-dir-lock-files.test.ts": 21,
  "test/integration/forward-batch.test.ts": 15,
  "test/integration/forward-batch-large-reply.test.ts": 15,
  "test/integration/node-datadir.test.ts": 14,
  "test/integration/node-snapshot-off-loop.test.ts": 13,
  "test/integration/node-member-identity.test.ts": 13,
  "test/integration/node-restart-config.test.ts": 12,
  "test/sim/sim.test.ts": 12,
  "test/integration/wal-checkpointer.test.ts": 11,
  "test/integration/node-wal-sync.test.ts": 11,
  "test/integration/forward-body-limit.test.ts": 11,
  "test/integration/serve.test.ts": 7,
  "test/unit/client-cluster.test.ts": 9,
  "test/unit/cli.test.ts": 9,
  "test/integration/peer-secret-wire.test.ts": 8,
  "test/integration/transport-inprocess.test.ts": 6,
};

/**
 * Files that run alone, after the lanes: the nemesis runs, whose fault schedules and "back in service
 * within 30 s" bounds are what they test. In lane 1 beside lane 2 they failed for the wrong reason twice
 * (ack-before-fsync on Deno at load 16, and on Node in a clean-clone CI run: the broken build's cluster did
 * not return to service in time, so the run failed without the lost writes the test looks for). A prefix
 * matches a folder.
 */
export const SOLO_FILES: readonly string[] = ["test/nemesis/"];

/**
 * Splits `files` (repo-relative, in run order) into those the lanes share and the {@link SOLO_FILES}, each
 * keeping its order.
 */
export function splitSolo(files: readonly string[]): { shared: string[]; solo: string[] } {
  const solo = (f: string) => SOLO_FILES.some((p) => (p.endsWith("/") ? f.startsWith(p) : f === p));
  return { shared: files.filter((f) => !solo(f)), solo: files.filter(solo) };
}

/** Weight of a file missing from {@link FILE_SECONDS}, s (most unit files take 1-3 s with start-up). */
export const DEFAULT_FILE_SECONDS = 3;

/** Source text that marks a file as starting real clusters (the two harnesses' entry points). */
const CLUSTER_SOURCE = /\bTestCluster\.start\(|\bNemesisCluster\.create\(|\brunNemesis\(/;

/**
 * Whether `file` (repo-relative) is one of {@link CLUSTER_FILES}, or its `source` (when given) starts a
 * real cluster through test/helpers/cluster.ts or the nemesis harness — so a new such file joins lane 1
 * without being listed.
 */
export function isClusterFile(file: string, source?: string): boolean {
  return CLUSTER_FILES.some((p) => (p.endsWith("/") ? file.startsWith(p) : file === p)) || (source !== undefined && CLUSTER_SOURCE.test(source));
}

/**
 * Splits `files` (repo-relative, in run order) into at most `jobs` non-empty lanes: the cluster files
 * ({@link isClusterFile}, with `sourceOf(file)` its text when known) all in lane 1, then every other file, slowest first, into the lane with the least estimated seconds so far
 * (greedy longest-processing-time). Each lane keeps the files' original relative order. `jobs` < 1 counts
 * as 1. Returns `[files]` when `jobs` is 1.
 */
export function assignLanes(
  files: readonly string[],
  jobs: number,
  seconds: Readonly<Record<string, number>> = FILE_SECONDS,
  sourceOf: (file: string) => string | undefined = () => undefined,
): string[][] {
  const n = Math.max(1, Math.floor(jobs));
  if (n === 1 || files.length <= 1) return files.length ? [[...files]] : [];
  const weight = (f: string) => seconds[f] ?? DEFAULT_FILE_SECONDS;
  const cluster = new Set(files.filter((f) => isClusterFile(f, sourceOf(f))));
  const lanes: string[][] = Array.from({ length: n }, () => []);
  const load = new Array<number>(n).fill(0);
  for (const f of cluster) {
    lanes[0].push(f);
    load[0] += weight(f);
  }
  const rest = files.filter((f) => !cluster.has(f)).sort((a, b) => weight(b) - weight(a));
  for (const f of rest) {
    let k = 0;
    for (let i = 1; i < n; i++) if (load[i] < load[k]) k = i;
    lanes[k].push(f);
    load[k] += weight(f);
  }
  const order = new Map(files.map((f, i) => [f, i]));
  return lanes.filter((l) => l.length > 0).map((l) => l.sort((a, b) => order.get(a)! - order.get(b)!));
}

/**
 * Splits an inclusive seed range `"A..B"` into at most `jobs` contiguous ranges of near-equal size, e.g.
 * `seedShards("1..300", 2)` is `["1..150", "151..300"]`. Throws on a malformed range.
 */
export function seedShards(range: string, jobs: number): string[] {
  const m = /^(\d+)\.\.(\d+)$/.exec(range);
  if (!m || Number(m[2]) < Number(m[1])) throw new Error(`seed range must be A..B with A <= B, got ${range}`);
  const from = Number(m[1]);
  const count = Number(m[2]) - from + 1;
  const n = Math.max(1, Math.min(Math.floor(jobs), count));
  const out: string[] = [];
  let next = from;
  for (let i = 0; i < n; i++) {
    const size = Math.floor(count / n) + (i < count % n ? 1 : 0);
    out.push(`${next}..${next + size - 1}`);
    next += size;
  }
  return out;
}
