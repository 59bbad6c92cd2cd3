/**
 * Hosts whose clocks disagree: workers run under libfaketime an hour ahead or behind, against a server and
 * Redis on the real clock. Liveness, retry backoffs and stored times must follow Redis's clock, not theirs.
 */
import { afterEach, beforeAll, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import type { Proc } from "./helpers/procs.ts";
import { type Stack, startStack } from "./helpers/stack.ts";
import { waitFor } from "./helpers/util.ts";
import { openSocket } from "./helpers/ws.ts";

/** Debian's faketime package (installed by `npm run setup -- --test`), for this machine's architecture. */
const LIBFAKETIME = [...new Bun.Glob("usr/lib/*/faketime/libfaketime.so.1").scanSync({ cwd: "/", absolute: true })][0] ?? "/usr/lib/<arch>/faketime/libfaketime.so.1";
/** Fast heartbeats so a dead worker is noticed within seconds. */
const FLEET = { WORKER_HEARTBEAT_MS: "200", WORKER_DEAD_MS: "1500" };

/** A worker whose wall clock is `offset` (libfaketime syntax: "+1h", "-1h") off; its timers keep real time. */
const skewed = (offset: string) => ({ LD_PRELOAD: LIBFAKETIME, FAKETIME: offset, DONT_FAKE_MONOTONIC: "1" });

beforeAll(() => {
  if (!existsSync(LIBFAKETIME)) throw new Error(`${LIBFAKETIME} is missing: run \`npm run setup -- --test\` (it installs Debian's faketime)`);
  // The skew must reach Bun's Date.now, or these tests would pass on any code.
  for (const [offset, ms] of [["+1h", 3_600_000], ["-1h", -3_600_000]] as const) {
    const r = Bun.spawnSync([process.execPath, "-e", "console.log(Date.now())"], { env: { ...process.env, ...skewed(offset) } });
    expect(Math.abs(Number(r.stdout.toString()) - Date.now() - ms)).toBeLessThan(60_000);
  }
});

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.stop();
  stack = undefined;
});

interface TaskInfo { state: string; attempts: number; created_at: number; started_at?: number; finished_at?: number }
async function task(s: Stack, id: string): Promise<TaskInfo> {
  return (await (await fetch(`${s.server.http}/tasks/${id}`)).json()) as TaskInfo;
}
async function submit(s: Stack, body: unknown): Promise<string> {
  const res = await fetch(`${s.server.http}/tasks`, { method: "POST", body: JSON.stringify(body) });
  expect(res.status).toBe(202);
  return ((await res.json()) as { id: string }).id;
}
async function listed(s: Stack, w: Proc): Promise<boolean> {
  const workers = (await (await fetch(`${s.server.http}/workers`)).json()) as { pid: number }[];
  return workers.some((x) => x.pid === w.pid);
}

test("a worker an hour behind is listed as alive, and the times stored for its task follow Redis's clock", async () => {
  stack = await startStack("clock-behind", { workers: 0, env: FLEET });
  const behind = await stack.addWorker(skewed("-1h"));
  await waitFor(() => listed(stack!, behind), 5_000, "the worker an hour behind in GET /workers");
  const id = await submit(stack, { task: "test_task", args: { task_id: 1 } });
  await waitFor(async () => (await task(stack!, id)).state === "succeeded", 10_000, `task ${id} succeeded`);
  const t = await task(stack, id);
  const now = Date.now();
  expect(t.started_at!).toBeGreaterThanOrEqual(t.created_at);
  expect(t.finished_at!).toBeGreaterThanOrEqual(t.started_at!);
  expect(Math.abs(t.finished_at! - now)).toBeLessThan(60_000);
  // The dashboard's worker list reads the same registry.
  const reg = (await (await fetch(`${stack.server.http}/workers`)).json()) as { pid: number; last_seen: number; started: number }[];
  const me = reg.find((w) => w.pid === behind.pid)!;
  expect(Math.abs(me.last_seen - now)).toBeLessThan(60_000);
}, 30_000);

test("a worker an hour ahead publishes its start time on Redis's clock from its first heartbeat", async () => {
  // Beats 10 s apart: what GET /workers shows at first is what the first beat wrote.
  stack = await startStack("clock-first-beat", { workers: 0, env: { WORKER_HEARTBEAT_MS: "10000", WORKER_DEAD_MS: "30000" } });
  const ahead = await stack.addWorker(skewed("+1h"));
  await waitFor(() => listed(stack!, ahead), 5_000, "the worker an hour ahead in GET /workers");
  const reg = (await (await fetch(`${stack.server.http}/workers`)).json()) as { pid: number; started: number }[];
  expect(Math.abs(reg.find((w) => w.pid === ahead.pid)!.started - Date.now())).toBeLessThan(60_000);
}, 30_000);

test("a worker an hour ahead that dies is found dead after WORKER_DEAD_MS, and its task runs again", async () => {
  stack = await startStack("clock-ahead", { workers: 0, env: FLEET });
  const ahead = await stack.addWorker(skewed("+1h"));
  const id = await submit(stack, { task: "countdown", args: { steps: 3, interval_ms: 1_000 } });
  await waitFor(async () => (await task(stack!, id)).state === "running", 10_000, `task ${id} running on the worker an hour ahead`);
  await stack.addWorker();
  await ahead.kill("SIGKILL");
  const killedAt = Date.now();
  // Dead after 1.5 s, seen by a worker that has been up 1.5 s + 2 s (its reconnect allowance), then 3 s of countdown.
  await waitFor(async () => (await task(stack!, id)).state === "succeeded", 20_000, `task ${id} run again after its worker died (an hour ahead)`);
  expect((await task(stack, id)).attempts).toBe(2);
  expect(Date.now() - killedAt).toBeLessThan(20_000);
}, 40_000);

test("a retry scheduled by a worker an hour behind waits out its backoff on the others too", async () => {
  stack = await startStack("clock-retry", { workers: 0, env: FLEET });
  await stack.addWorker(skewed("-1h"));
  const s = await openSocket(`${stack.server.ws}/ws`);
  try {
    s.send({ type: "submit", ref: "r", task: "fail", args: { message: "once more" }, options: { retries: 1, backoff_ms: 8_000 } });
    const upToRetry = await s.until((f) => f.type === "queued", 10_000);
    const retryAt = Date.now() + upToRetry.at(-1).delay_ms; // 4-8 s away
    const id = upToRetry[0].id;
    await stack.addWorker(); // on the real clock: it promotes due retries every second
    await s.until((f) => f.type === "failed", 20_000);
    const t = await task(stack, id);
    expect(t.attempts).toBe(2);
    expect(t.started_at!).toBeGreaterThanOrEqual(retryAt - 250);
  } finally {
    s.close();
  }
}, 40_000);
