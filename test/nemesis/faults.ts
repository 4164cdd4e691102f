/**
 * The nemeses: each fault is drawn from the seeded PRNG, applied to the real cluster, held for a while and
 * healed. Kinds (the design brief's "faults it must survive"): kill -9 of the leader, of followers up to a
 * minority, of every node at once (power cut); SIGSTOP/SIGCONT pauses; partitions (isolated leader,
 * minority/majority split, bridge, one-way); slow links; leadership transfer; membership change (remove a
 * follower, wipe its disk, add it back as a learner, promote it).
 */
import { type NemesisCluster, getJson, sleep } from "./cluster.ts";
import type { Rng } from "./rng.ts";

/** Names of the fault kinds (also the keys of the unavailability report). */
export const FAULT_KINDS = [
  "kill-leader", "kill-minority", "power-cut", "pause", "isolate-leader", "split", "bridge", "one-way", "slow", "transfer", "membership",
] as const;

/** One fault kind. */
export type FaultKind = (typeof FAULT_KINDS)[number];

/** What happened during one fault (for the report and the run folder). */
export interface FaultEvent {
  kind: FaultKind;
  /** Run clock (ms) when the fault started and when it was healed. */
  start: number;
  end: number;
  detail: string;
  /** Set when the fault's own steps failed (e.g. a membership call refused). */
  error?: string;
}

/** POST/DELETE JSON with a deadline; returns status and body text (status 0 on a network error). */
export async function send(url: string, method: string, body: unknown, timeoutMs: number): Promise<{ status: number; text: string }> {
  try {
    const res = await fetch(url, { method, body: body === undefined ? undefined : JSON.stringify(body), headers: { "content-type": "application/json" }, signal: AbortSignal.timeout(timeoutMs) });
    return { status: res.status, text: (await res.text()).slice(0, 300) };
  } catch (e) {
    return { status: 0, text: String((e as Error)?.message ?? e) };
  }
}

/** Applies one fault of `kind` for about `holdMs` and heals it; never throws (errors go in the event). */
export async function runFault(c: NemesisCluster, kind: FaultKind, rng: Rng, holdMs: number, now: () => number, log: (s: string) => void): Promise<FaultEvent> {
  const ev: FaultEvent = { kind, start: now(), end: 0, detail: "" };
  const ids = c.members.map((m) => m.id);
  const minority = Math.floor((ids.length - 1) / 2);
  try {
    const leader = (await c.leader()) ?? rng.pick(ids);
    const followers = ids.filter((x) => x !== leader);
    switch (kind) {
      case "kill-leader":
      case "kill-minority": {
        const victims = kind === "kill-leader" ? [leader] : rng.sample(ids, rng.range(1, minority));
        ev.detail = `kill -9 ${victims.join(",")}`;
        log(`fault: ${ev.detail}`);
        await Promise.all(victims.map((v) => c.kill(v)));
        await sleep(holdMs);
        for (const v of victims) c.restart(v);
        break;
      }
      case "power-cut": {
        ev.detail = "kill -9 every node";
        log(`fault: ${ev.detail}`);
        await Promise.all(ids.map((v) => c.kill(v)));
        await sleep(Math.min(holdMs, 1000));
        for (const v of ids) c.restart(v);
        break;
      }
      case "pause": {
        const victim = rng.next() < 0.5 ? leader : rng.pick(followers);
        ev.detail = `SIGSTOP ${victim}`;
        log(`fault: ${ev.detail}`);
        c.pause(victim);
        await sleep(holdMs);
        c.resume(victim);
        break;
      }
      case "isolate-leader":
        ev.detail = `isolate leader ${leader}`;
        log(`fault: ${ev.detail}`);
        c.partition([leader], followers);
        await sleep(holdMs);
        break;
      case "split": {
        const small = rng.sample(ids, rng.range(1, minority));
        ev.detail = `partition ${small.join(",")} | ${ids.filter((x) => !small.includes(x)).join(",")}`;
        log(`fault: ${ev.detail}`);
        c.partition(small, ids.filter((x) => !small.includes(x)));
        await sleep(holdMs);
        break;
      }
      case "bridge": {
        // One node sees both halves; the halves do not see each other.
        const shuffled = rng.sample(ids, ids.length);
        const bridge = shuffled[0];
        const half = Math.floor((ids.length - 1) / 2);
        const a = shuffled.slice(1, 1 + half);
        const b = shuffled.slice(1 + half);
        ev.detail = `bridge ${bridge} between ${a.join(",")} and ${b.join(",")}`;
        log(`fault: ${ev.detail}`);
        c.partition(a, b);
        await sleep(holdMs);
        break;
      }
      case "one-way": {
        // The victim's outbound links are cut; it still hears everyone (C15-like).
        const victim = rng.next() < 0.5 ? leader : rng.pick(followers);
        ev.detail = `one-way: ${victim} cannot send`;
        log(`fault: ${ev.detail}`);
        for (const y of ids) if (y !== victim) c.link(victim, y).cut();
        await sleep(holdMs);
        break;
      }
      case "slow": {
        const victim = rng.pick(ids);
        const ms = rng.range(20, 150);
        ev.detail = `slow links of ${victim}: ${ms} ms`;
        log(`fault: ${ev.detail}`);
        for (const y of ids) if (y !== victim) { c.link(victim, y).setDelay(ms); c.link(y, victim).setDelay(ms); }
        await sleep(holdMs);
        break;
      }
      case "transfer": {
        const to = rng.pick(followers);
        const r = await send(`${c.url(leader)}/v1/cluster/leader`, "POST", { id: to }, 5000);
        ev.detail = `transfer ${leader} -> ${to}: ${r.status}`;
        log(`fault: ${ev.detail}`);
        if (r.status !== 200) ev.error = `POST /v1/cluster/leader -> ${r.status} ${r.text}`;
        await sleep(Math.min(holdMs, 1000));
        break;
      }
      case "membership":
        ev.detail = await membership(c, rng.pick(followers), log);
        break;
    }
  } catch (e) {
    ev.error = String((e as Error)?.stack ?? e);
  } finally {
    c.healLinks();
    for (const m of c.members) {
      c.resume(m);
      if (!m.proc && kind !== "membership") c.restart(m);
    }
  }
  ev.end = now();
  if (ev.error) log(`fault ${kind} failed: ${ev.error.split("\n")[0]}`);
  return ev;
}

/** The member list of the cluster as its leader reports it (waits up to 20 s for a leader); throws when none answers. */
async function leaderMembers(c: NemesisCluster): Promise<Array<{ id: string; role: string }>> {
  const view = await getJson<{ members: Array<{ id: string; role: string }> }>(`${c.url(await c.waitLeader(20_000))}/v1/cluster`, 2000);
  if (!view) throw new Error("the leader did not answer GET /v1/cluster");
  return view.members;
}

/**
 * Repeats `call` until `done()` holds (at most `attempts` times, 500 ms apart). 503 (a change in flight, no
 * leader) and 504 / network errors (outcome unknown: it may have been applied) are retried, since the
 * member list, not the answer, says whether the step happened; any other non-2xx answer throws with `what`.
 */
async function untilMembers(what: string, attempts: number, done: () => Promise<boolean>, call: () => Promise<{ status: number; text: string }>): Promise<void> {
  let last = "";
  for (let i = 0; i < attempts; i++) {
    if (await done().catch(() => false)) return;
    const r = await call();
    last = `${r.status} ${r.text}`;
    if (r.status !== 0 && r.status !== 503 && r.status !== 504 && (r.status < 200 || r.status >= 300) && r.status !== 404 && r.status !== 409) throw new Error(`${what} -> ${last}`);
    await sleep(500);
  }
  if (await done().catch(() => false)) return;
  throw new Error(`${what}: not done after ${attempts} attempts; last answer ${last}`);
}

/**
 * Remove `victim`, kill it, wipe its disk, start it empty, add it back as a learner with its real peer URL
 * (other members then dial it directly, not through a proxy), wait until it has caught up, promote it.
 * Works from any state the victim is in — a voter, a learner, or already removed by an earlier cycle that
 * failed half way (e.g. its removal answered 504 outcome_unknown and was applied) — because each step is
 * confirmed by the leader's member list rather than by the answer. Throws with the failing step.
 */
export async function membership(c: NemesisCluster, victim: string, log: (s: string) => void): Promise<string> {
  log(`fault: membership cycle of ${victim} (remove, wipe, add learner, promote)`);
  const leaderUrl = async () => c.url(await c.waitLeader(20_000));
  const m = c.member(victim);
  const role = async () => (await leaderMembers(c)).find((x) => x.id === victim)?.role;
  await untilMembers(`remove ${victim}: DELETE /v1/cluster/members/${victim}`, 40, async () => (await role()) === undefined, async () => send(`${await leaderUrl()}/v1/cluster/members/${victim}`, "DELETE", undefined, 10_000));
  await c.kill(victim);
  c.wipe(victim);
  c.restart(victim);
  const body = { id: victim, peerUrl: `http://127.0.0.1:${m.peerPort}`, clientUrl: c.url(victim) };
  await untilMembers(`add learner ${victim}: POST /v1/cluster/members`, 40, async () => (await role()) !== undefined, async () => send(`${await leaderUrl()}/v1/cluster/members`, "POST", body, 10_000));
  // Caught up: its applied index reaches the leader's commit index seen now (bounded wait).
  const target = (await getJson<{ commitIndex: number }>(`${await leaderUrl()}/v1/cluster`, 2000))?.commitIndex ?? 0;
  let applied = -1;
  for (let i = 0; i < 300; i++) {
    applied = (await getJson<{ appliedIndex: number }>(`${c.url(victim)}/v1/cluster`, 1000))?.appliedIndex ?? -1;
    if (applied >= target) break;
    await sleep(100);
  }
  if (applied < target) throw new Error(`learner ${victim} did not catch up: applied ${applied} < ${target} after 30 s`);
  await untilMembers(`promote ${victim}: POST /v1/cluster/members/${victim}/promote`, 40, async () => (await role()) === "voter", async () => send(`${await leaderUrl()}/v1/cluster/members/${victim}/promote`, "POST", undefined, 10_000));
  return `membership cycle of ${victim}: removed, wiped, re-added, caught up to ${applied}, promoted`;
}

/**
 * After the schedule: every founding member must be a voter again before the final checks (a membership
 * cycle that failed half way would otherwise leave a member out and the replicas "unconverged" for a
 * harness reason). Runs a full cycle for each one that is not; returns what it did ("" when nothing).
 */
export async function restoreVoters(c: NemesisCluster, ids: string[], log: (s: string) => void): Promise<string> {
  const members = await leaderMembers(c);
  const missing = ids.filter((id) => members.find((x) => x.id === id)?.role !== "voter");
  for (const id of missing) await membership(c, id, log);
  return missing.length === 0 ? "" : `restored as voters: ${missing.join(", ")}`;
}
