/**
 * Workers and servers dying, with real processes on a redis-server with AOF (appendfsync always): kill -9 or
 * freeze a worker, SIGTERM a busy worker, retries with backoff until `exhausted`, the dead-letter list, kill -9
 * and SIGTERM the server. Each test runs its own server and workers (unique prefix) on the file's redis-server.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { expectWellFormed, tally } from "./helpers/events.ts";
import { startServer } from "./helpers/procs.ts";
import { type TestRedis, cli, startRedis } from "./helpers/redis.ts";
import { type Stack, startStack } from "./helpers/stack.ts";
import { waitFor } from "./helpers/util.ts";
import { openSocket } from "./helpers/ws.ts";

const fast = { WORKER_HEARTBEAT_MS: "200", WORKER_DEAD_MS: "1200" };
let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis({ aof: true });
});
afterAll(async () => {
  await redis?.stop();
});

async function withStack(name: string, opts: { workers: number; env?: Record<string, string> }, body: (stack: Stack) => Promise<void>): Promise<void> {
  const stack = await startStack(name, { redis, workers: opts.workers, env: { ...fast, ...opts.env } });
  try {
    await body(stack);
  } finally {
    await stack.stop();
  }
}

async function getJson(url: string, init?: RequestInit): Promise<{ status: number; body: any }> {
  const res = await fetch(url, init);
  return { status: res.status, body: await res.json() };
}

/** pid -> ids of the tasks it runs, from GET /workers. */
async function runningByPid(http: string): Promise<Map<number, string[]>> {
  const workers = (await getJson(`${http}/workers`)).body as { pid: number; running: { id: string }[] }[];
  return new Map(workers.map((w) => [w.pid, w.running.map((r) => r.id)]));
}

/** SIGSTOPs the (only) worker while its BLMOVE is blocked in Redis, so the next task moves into its list and waits there. */
async function freezeInBlmove(pid: number): Promise<void> {
  const blocked = () => / name=taskwire-worker:blocking .*flags=b /.test(cli(redis, "client", "list"));
  for (let i = 0; ; i++) {
    await waitFor(blocked, 5_000, "the worker blocked in BLMOVE");
    process.kill(pid, "SIGSTOP");
    if (blocked()) return; // still blocked once frozen (its BLMOVE did not just time out)
    process.kill(pid, "SIGCONT");
    if (i === 5) throw new Error("could not freeze the worker inside BLMOVE");
  }
}

test("kill -9 a worker with tasks in flight: its tasks go back to `queued`, another worker runs them, every result arrives once", async () => {
  await withStack("kill9", { workers: 2, env: { WORKER_CONCURRENCY: "8" } }, async (stack) => {
    const s = await openSocket(`${stack.server.ws}/ws`);
    const t = tally(s);
    const refs: string[] = [];
    for (let i = 0; i < 10; i++) {
      refs.push(`t${i}`);
      s.send({ type: "submit", ref: `t${i}`, task: "test_task", args: { task_id: `v${i}`, delay_ms: 1500 } });
    }
    for (let i = 0; i < 3; i++) {
      refs.push(`c${i}`);
      s.send({ type: "submit", ref: `c${i}`, task: "countdown", args: { steps: 10, interval_ms: 150 } });
    }
    const ids = () => refs.map((r) => t.idOf.get(r) ?? `(no id for ${r})`);
    let onVictim: string[] = [];
    const [victim, other] = stack.workers as [(typeof stack.workers)[0], (typeof stack.workers)[0]];
    await waitFor(async () => {
      const running = await runningByPid(stack.server.http);
      onVictim = running.get(victim.pid) ?? [];
      return onVictim.length > 0 && onVictim.length + (running.get(other.pid)?.length ?? 0) === refs.length;
    }, 10_000, "both workers running all 13 tasks");
    await victim.kill("SIGKILL");

    await t.settled(ids, 20_000);
    await Bun.sleep(300); // anything after the terminal events would be a duplicate
    await t.stop();
    expect(t.errors).toEqual([]);
    for (const [i, ref] of refs.entries()) {
      const id = t.idOf.get(ref)!;
      const frames = t.events.get(id)!;
      expectWellFormed(frames);
      expect(frames.at(-1)).toMatchObject({ type: "result", result: ref.startsWith("t") ? `v${i}` : "done" });
      const queued = frames.filter((f) => f.type === "queued");
      const info = (await getJson(`${stack.server.http}/tasks/${id}`)).body;
      if (onVictim.includes(id)) {
        // Handed back once, with the attempt it will run as; the lost attempt counts.
        expect(queued).toEqual([expect.objectContaining({ attempt: 2, reason: "worker_lost" })]);
        expect(info.attempts).toBe(2);
      } else {
        expect(queued).toEqual([]);
        expect(info.attempts).toBe(1);
      }
    }
    expect(other.output()).toContain(`${onVictim.length} of its tasks went back to the queue`);
    s.close();
  });
}, 40_000);

test("a task whose worker is lost more than TASK_MAX_LOSSES times ends `failed` code `exhausted` instead of killing the next one", async () => {
  await withStack("losses", { workers: 3, env: { TASK_MAX_LOSSES: "1" } }, async (stack) => {
    const s = await openSocket(`${stack.server.ws}/ws`);
    s.send({ type: "submit", ref: "doomed", task: "test_task", args: { task_id: "x", delay_ms: 20_000 } });
    const id = (await s.next()).id as string;
    const killHolder = async () => {
      let holder: number | undefined;
      await waitFor(async () => {
        holder = [...(await runningByPid(stack.server.http))].find(([, ids]) => ids.includes(id))?.[0];
        return holder !== undefined;
      }, 10_000, "a worker running the task");
      await stack.workers.find((w) => w.pid === holder)!.kill("SIGKILL");
    };
    await killHolder();
    expect(await s.next(10_000)).toMatchObject({ type: "queued", id, attempt: 2, reason: "worker_lost" });
    await killHolder();
    const end = await s.next(10_000);
    expect(end).toMatchObject({ type: "failed", id, error: { code: "exhausted", message: "the worker running it was lost 2 times" } });
    // The dead-letter entry is written right after the final state (its own command, once that one's reply is in).
    const dead = async () => (await getJson(`${stack.server.http}/dead`)).body.items.map((t: { id: string }) => t.id) as string[];
    await waitFor(async () => (await dead()).includes(id), 1_000, "the task in the dead-letter list");
    s.close();
  });
}, 40_000);

test("a worker taken for dead comes back: both attempts finish, the final state is written once, watchers get one terminal event", async () => {
  await withStack("zombie", { workers: 2 }, async (stack) => {
    const s = await openSocket(`${stack.server.ws}/ws`);
    s.send({ type: "submit", ref: "z", task: "test_task", args: { task_id: "z", delay_ms: 1_500 } });
    const { id } = await s.next();
    let running = new Map<number, string[]>();
    await waitFor(async () => [...(running = await runningByPid(stack.server.http)).values()].some((ids) => ids.includes(id)), 5_000, "the task running");
    const frozen = stack.workers.find((w) => running.get(w.pid)?.includes(id))!;
    const other = stack.workers.find((w) => w !== frozen)!;
    process.kill(frozen.pid, "SIGSTOP"); // silent past WORKER_DEAD_MS: the other worker reaps it
    try {
      await waitFor(async () => (await runningByPid(stack.server.http)).get(other.pid)?.includes(id) === true, 10_000, "the other worker running the task");
    } finally {
      process.kill(frozen.pid, "SIGCONT"); // its 1.5 s are long over: it finishes at once, the other one later
    }
    const frames = await s.until((f) => f.type === "result", 5_000);
    expect(frames.map((f) => [f.type, f.seq, f.reason])).toEqual([["queued", 1, "worker_lost"], ["result", 2, undefined]]);
    // The other attempt finishes too, and its outcome is dropped: nothing more arrives.
    await waitFor(async () => (await runningByPid(stack.server.http)).get(other.pid)?.length === 0, 5_000, "the second attempt to end");
    await Bun.sleep(300);
    expect(s.pending()).toEqual([]);
    expect((await getJson(`${stack.server.http}/tasks/${id}`)).body).toMatchObject({ state: "succeeded", result: "z", attempts: 2 });
    expect(cli(redis, "hget", `${stack.env.TASKWIRE_PREFIX}:stats`, "succeeded:test_task")).toBe("1");
    s.close();
  });
}, 30_000);

test("a worker killed between taking a task off the queue and claiming it: the reaper puts the task back and it runs", async () => {
  await withStack("moved", { workers: 1 }, async (stack) => {
    const a = stack.workers[0]!;
    const [info] = (await getJson(`${stack.server.http}/workers`)).body as { id: string }[];
    const active = `${stack.env.TASKWIRE_PREFIX}:{q}:active:${info!.id}`;
    // Frozen while its BLMOVE is blocked in Redis: Redis still moves the next task into A's list, and A
    // never claims it (a crash between the two steps, made deterministic).
    await freezeInBlmove(a.pid);
    const s = await openSocket(`${stack.server.ws}/ws`);
    s.send({ type: "submit", ref: "m", task: "test_task", args: { task_id: "m" } });
    const { id } = await s.next();
    await waitFor(() => cli(redis, "lrange", active, "0", "-1") === id, 3_000, "the task moved into the frozen worker's list");
    expect(cli(redis, "hget", `${stack.env.TASKWIRE_PREFIX}:task:{${id}}`, "state")).toBe("queued");
    await a.kill("SIGKILL");

    const b = await stack.addWorker();
    const frames = await s.until((f) => f.type === "result", 15_000);
    expect(frames).toEqual([{ type: "result", id, seq: 1, result: "m" }]);
    expect(b.output()).toContain("1 of its tasks went back to the queue");
    expect(cli(redis, "exists", active)).toBe("0");
    s.close();
  });
}, 30_000);

test("a start that ran but whose reply was lost (ioredis then sends it again): the task is handed back and runs, not left `running` with no one on it", async () => {
  await withStack("resent", { workers: 1 }, async (stack) => {
    const a = stack.workers[0]!;
    const [info] = (await getJson(`${stack.server.http}/workers`)).body as { id: string }[];
    const p = stack.env.TASKWIRE_PREFIX;
    await freezeInBlmove(a.pid);
    const s = await openSocket(`${stack.server.ws}/ws`);
    s.send({ type: "submit", ref: "r", task: "test_task", args: { task_id: "r" } });
    const { id } = await s.next();
    const active = `${p}:{q}:active:${info!.id}`;
    await waitFor(() => cli(redis, "lrange", active, "0", "-1") === id, 3_000, "the task moved into the frozen worker's list");
    // What the first start did before its reply was lost: the worker's own start, as start.lua writes it.
    cli(redis, "hset", `${p}:task:{${id}}`, "state", "running", "worker", info!.id, "attempts", "1", "started", String(Date.now()));
    process.kill(a.pid, "SIGCONT");
    // Its start (the "resend") finds the task started by itself: kept for the audit, handed back, run again.
    const frames = await s.until((f) => f.type === "result", 15_000);
    expect(frames).toEqual([
      { type: "queued", id, seq: 1, attempt: 1, reason: "worker_restarted" },
      { type: "result", id, seq: 2, result: "r" },
    ]);
    expect(a.output()).toContain("1 tasks taken but not run here");
    expect(cli(redis, "hmget", `${p}:task:{${id}}`, "state", "attempts")).toBe("succeeded\n1");
    s.close();
  });
}, 30_000);

test("SIGTERM a busy worker: it stops taking tasks, finishes short ones, hands long ones back to another worker and exits 0", async () => {
  await withStack("sigterm", { workers: 1, env: { WORKER_GRACE_MS: "4000", WORKER_CONCURRENCY: "8" } }, async (stack) => {
    const a = stack.workers[0]!;
    const s = await openSocket(`${stack.server.ws}/ws`);
    const t = tally(s);
    const short = ["s0", "s1", "s2", "s3"];
    const long = ["l0", "l1", "l2"];
    for (const ref of short) s.send({ type: "submit", ref, task: "test_task", args: { task_id: ref, delay_ms: 1_500 } });
    for (const ref of long) s.send({ type: "submit", ref, task: "test_task", args: { task_id: ref, delay_ms: 6_000 } });
    const refs = [...short, ...long];
    const ids = () => refs.map((r) => t.idOf.get(r) ?? `(no id for ${r})`);
    await waitFor(async () => (await runningByPid(stack.server.http)).get(a.pid)?.length === refs.length, 10_000, "worker A running all 7");

    // B is up before A stops and could reap A, were A to stop beating during its grace period
    // (longer than WORKER_DEAD_MS + B's start-up wait): the long tasks must come back as a hand-back.
    const b = await stack.addWorker();
    const t0 = Date.now();
    const code = await a.kill("SIGTERM");
    const tookMs = Date.now() - t0;
    expect(code).toBe(0);
    // A waited out its grace period for the long tasks, then left well before they would have ended.
    expect(tookMs).toBeGreaterThanOrEqual(3_900);
    expect(tookMs).toBeLessThan(4_000 + 2_000);
    expect(a.output()).toContain("handed 3 unfinished tasks back to the queue");

    await t.settled(ids, 15_000);
    await Bun.sleep(300);
    await t.stop();
    expect(t.errors).toEqual([]);
    for (const ref of refs) {
      const id = t.idOf.get(ref)!;
      const frames = t.events.get(id)!;
      expectWellFormed(frames);
      expect(frames.at(-1)).toMatchObject({ type: "result", result: ref });
      const info = (await getJson(`${stack.server.http}/tasks/${id}`)).body;
      // A hand-back on shutdown does not use up an attempt.
      expect(info.attempts).toBe(1);
      if (short.includes(ref)) expect(frames.map((f) => f.type)).toEqual(["result"]);
      else expect(frames.map((f) => [f.type, f.attempt, f.reason])).toEqual([["queued", 1, "worker_shutdown"], ["result", undefined, undefined]]);
    }
    // A left the registry, and only B is alive.
    expect([...(await runningByPid(stack.server.http)).keys()]).toEqual([b.pid]);
    s.close();
  });
}, 40_000);

test("a task that always times out ends `failed` code `exhausted` after its retries, the backoff visible in `queued` events; the dead-letter list keeps it and POST retry runs it again", async () => {
  await withStack("exhaust", { workers: 1 }, async (stack) => {
    const http = stack.server.http;
    const s = await openSocket(`${stack.server.ws}/ws`);
    const options = { timeout_ms: 150, retries: 2, backoff_ms: 200 };
    s.send({ type: "submit", ref: "slow", task: "test_task", args: { task_id: "slow", delay_ms: 800 }, options });
    const accepted = await s.next();
    expect(accepted).toMatchObject({ type: "accepted", ref: "slow" });
    const id: string = accepted.id;
    const frames: any[] = [];
    const arrived: number[] = [];
    for (;;) {
      const f = await s.next(10_000);
      frames.push(f);
      arrived.push(Date.now());
      if (f.type === "failed") break;
    }
    expectWellFormed(frames);
    const [q1, q2, failed] = frames;
    expect(frames.length).toBe(3);
    // Exponential backoff with jitter: attempt n waits backoff_ms * 2^(n-1), minus up to half.
    expect(q1).toMatchObject({ type: "queued", id, attempt: 2, reason: "retry", error: { code: "timeout" } });
    expect(q1.error.message).toContain("150 ms");
    expect(q1.delay_ms).toBeGreaterThanOrEqual(100);
    expect(q1.delay_ms).toBeLessThanOrEqual(200);
    expect(q2).toMatchObject({ type: "queued", id, attempt: 3, reason: "retry", error: { code: "timeout" } });
    expect(q2.delay_ms).toBeGreaterThanOrEqual(200);
    expect(q2.delay_ms).toBeLessThanOrEqual(400);
    // The next attempt starts after the delay, then runs 150 ms into its timeout (the slack absorbs delivery jitter).
    expect(arrived[1]! - arrived[0]!).toBeGreaterThanOrEqual(q1.delay_ms);
    expect(arrived[2]! - arrived[1]!).toBeGreaterThanOrEqual(q2.delay_ms);
    expect(failed).toMatchObject({ type: "failed", id, error: { code: "exhausted" } });
    expect(failed.error.message).toContain("3 attempts");

    const info = (await getJson(`${http}/tasks/${id}`)).body;
    expect(info).toMatchObject({ state: "failed", attempts: 3, error: { code: "exhausted" } });

    const dead = (await getJson(`${http}/dead`)).body;
    expect(dead.total).toBe(1);
    expect(dead.items).toEqual([expect.objectContaining({ id, task: "test_task", state: "failed", args: { task_id: "slow", delay_ms: 800 }, error: expect.objectContaining({ code: "exhausted" }) })]);
    expect(dead.items[0].options).toEqual({ ...options, backoff_max_ms: 60_000 }); // stored sparse, listed whole

    // Retried as is: a new task with the same args and options, which runs (and times out) again.
    const r1 = await getJson(`${http}/dead/${id}/retry`, { method: "POST" });
    expect(r1.status).toBe(202);
    expect(r1.body.retry_of).toBe(id);
    expect(r1.body.id).not.toBe(id);
    expect((await getJson(`${http}/dead`)).body.total).toBe(0);
    s.send({ type: "subscribe", id: r1.body.id });
    const again = await s.until((f) => f.type === "failed", 10_000);
    expect(again.map((f) => [f.type, f.attempt])).toEqual([["queued", 2], ["queued", 3], ["failed", undefined]]);
    expect(again.at(-1).error.code).toBe("exhausted");

    // A second retry of the same dead task is refused; an unknown one is 404; a bad body names the field.
    const twice = await getJson(`${http}/dead/${id}/retry`, { method: "POST" });
    expect(twice.status).toBe(400);
    expect(twice.body.error.message).toContain("not in the dead-letter list");
    expect((await getJson(`${http}/dead/0193f7c2-6d1e-7a51-9c3e-41f0d2b8a9e4/retry`, { method: "POST" })).status).toBe(404);
    const bad = await getJson(`${http}/dead/${r1.body.id}/retry`, { method: "POST", body: JSON.stringify({ options: { retries: -1 } }) });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toContain("options.retries");

    // Retried with a longer timeout: it succeeds this time.
    const r2 = await getJson(`${http}/dead/${r1.body.id}/retry`, { method: "POST", body: JSON.stringify({ options: { timeout_ms: 5_000 } }) });
    expect(r2.status).toBe(202);
    s.send({ type: "subscribe", id: r2.body.id });
    const ok = await s.until((f) => f.type === "result" || f.type === "failed", 10_000);
    expect(ok).toEqual([{ type: "result", id: r2.body.id, seq: 1, result: "slow" }]);
    expect((await getJson(`${http}/dead`)).body).toEqual({ total: 0, items: [] });
    s.close();
  });
}, 40_000);

test("retries and timeouts: a throwing task retries then ends `exhausted`; without retries it fails with its own code; options are checked", async () => {
  await withStack("retries", { workers: 1 }, async (stack) => {
    const s = await openSocket(`${stack.server.ws}/ws`);
    s.send({ type: "submit", ref: "boom", task: "fail", args: { message: "boom" }, options: { retries: 1, backoff_ms: 50 } });
    const boom = await s.until((f) => f.type === "failed");
    expect(boom.map((f) => f.type)).toEqual(["accepted", "queued", "failed"]);
    expect(boom[1]).toMatchObject({ seq: 1, attempt: 2, reason: "retry", error: { code: "task_error", message: "boom" } });
    expect(boom[2]).toMatchObject({ seq: 2, error: { code: "exhausted" } });

    s.send({ type: "submit", ref: "once", task: "fail", args: { message: "once" } });
    const once = await s.until((f) => f.type === "failed");
    expect(once.slice(1)).toEqual([{ type: "failed", id: once[0].id, seq: 1, error: { code: "task_error", message: "once" } }]);

    s.send({ type: "submit", ref: "late", task: "test_task", args: { task_id: 1, delay_ms: 2_000 }, options: { timeout_ms: 100 } });
    const late = await s.until((f) => f.type === "failed");
    expect(late.at(-1)).toMatchObject({ seq: 1, error: { code: "timeout" } });

    s.send({ type: "submit", ref: "many", task: "test_task", args: { task_id: 1 }, options: { retries: 99 } });
    const many = await s.next();
    expect(many).toMatchObject({ type: "error", ref: "many", error: { code: "bad_request" } });
    expect(many.error.message).toContain("options.retries");
    s.send({ type: "submit", ref: "odd", task: "test_task", args: { task_id: 1 }, options: { bogus: 1 } });
    expect((await s.next()).error.code).toBe("bad_request");
    const post = await getJson(`${stack.server.http}/tasks`, { method: "POST", body: JSON.stringify({ task: "test_task", args: { task_id: 1 }, options: { timeout_ms: -1 } }) });
    expect(post.status).toBe(400);
    expect(post.body.error.message).toContain("options.timeout_ms");
    // Nothing was stored for the refused submits: only the three tasks above exist.
    const keys = cli(redis, "--scan", "--pattern", `${stack.env.TASKWIRE_PREFIX}:task:*`).split("\n").filter(Boolean);
    expect(keys.length).toBe(3);
    s.close();
  });
}, 30_000);

test("kill -9 the server mid-task: on a new server process, subscribe with `after` gets every missed event once, in order", async () => {
  await withStack("srvkill", { workers: 1 }, async (stack) => {
    const s = await openSocket(`${stack.server.ws}/ws`);
    s.send({ type: "submit", ref: "cd", task: "countdown", args: { steps: 25, interval_ms: 80 } });
    const { id } = await s.next();
    const before = await s.until((f) => f.type === "progress" && f.seq >= 5);
    const last = before.at(-1).seq as number;
    await stack.server.kill("SIGKILL");
    expect((await s.closed).code).not.toBe(1000);

    stack.server = await startServer({ ...stack.env, PORT: String(stack.server.port) }); // same address: a client just reconnects
    const resumed = await openSocket(`${stack.server.ws}/ws`);
    resumed.send({ type: "subscribe", id, after: last });
    const rest = await resumed.until((f) => f.type === "result", 10_000);
    expectWellFormed(rest, last);
    expect(rest.at(-1)).toMatchObject({ type: "result", seq: 26, result: "done" });

    const fresh = await openSocket(`${stack.server.ws}/ws`);
    fresh.send({ type: "subscribe", id });
    const all = await fresh.until((f) => f.type === "result", 5_000);
    expectWellFormed(all);
    expect(all.length).toBe(26);
    await Bun.sleep(200);
    expect([...resumed.pending(), ...fresh.pending()]).toEqual([]);
    for (const x of [resumed, fresh]) x.close();
  });
}, 30_000);

test("SIGTERM the server: open sockets close with 1001, the process exits 0, and running tasks finish for a later server", async () => {
  await withStack("srvterm", { workers: 1 }, async (stack) => {
    const multi = await openSocket(`${stack.server.ws}/ws`);
    multi.send({ type: "submit", ref: "x", task: "test_task", args: { task_id: "x", delay_ms: 1_000 } });
    const { id } = await multi.next();
    const seed = await openSocket(`${stack.server.ws}/async_task/`);
    seed.send({ task_id: 7, delay_ms: 1_000 });
    expect((await seed.next()).flag).toBe(true);

    const code = await stack.server.kill("SIGTERM");
    expect(code).toBe(0);
    expect((await multi.closed).code).toBe(1001);
    expect((await seed.closed).code).toBe(1001);

    stack.server = await startServer({ ...stack.env, PORT: String(stack.server.port) });
    await waitFor(async () => (await getJson(`${stack.server.http}/tasks/${id}`)).body.state === "succeeded", 5_000, "the task to finish");
  });
}, 30_000);
