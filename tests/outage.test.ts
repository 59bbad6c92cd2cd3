/**
 * Redis outages with real processes: kill -9 and restart redis-server (AOF, appendfsync always) mid-run, cut
 * the server's subscription while events flow, and lose a worker's claim to an outage. Sockets stay open,
 * /healthz follows Redis, a submit during the outage is refused with `unavailable` and stores nothing, and
 * every watcher gets every event once.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { expectWellFormed, tally } from "./helpers/events.ts";
import { makeKeys } from "../lib/keys.ts";
import { makeLogger } from "../lib/log.ts";
import { createRedis, waitReady } from "../lib/redis.ts";
import type { ScriptedRedis } from "../lib/scripts.ts";
import { cli } from "./helpers/redis.ts";
import type { Proc } from "./helpers/procs.ts";
import { type Stack, startStack } from "./helpers/stack.ts";
import { waitFor } from "./helpers/util.ts";
import { openSocket } from "./helpers/ws.ts";

let stack: Stack;
beforeAll(async () => {
  stack = await startStack("outage", { workers: 2, aof: true, env: { WORKER_HEARTBEAT_MS: "200", WORKER_DEAD_MS: "1200" } });
});
afterAll(async () => {
  await stack?.stop();
});

const health = () => fetch(`${stack.server.http}/healthz`).then((r) => r.status, () => 0);
const taskKeys = () => cli(stack.redis, "--scan", "--pattern", `${stack.env.TASKWIRE_PREFIX}:task:*`).split("\n").filter(Boolean).sort();

test("kill -9 redis-server mid-run and restart it: tasks finish, watchers get every event once, /healthz 503 then 200, a submit meanwhile gets `unavailable` and stores nothing", async () => {
  const s = await openSocket(`${stack.server.ws}/ws`);
  const t = tally(s);
  const refs: string[] = [];
  for (let i = 0; i < 4; i++) {
    refs.push(`c${i}`);
    s.send({ type: "submit", ref: `c${i}`, task: "countdown", args: { steps: 20, interval_ms: 250 } });
  }
  for (let i = 0; i < 4; i++) {
    refs.push(`t${i}`);
    s.send({ type: "submit", ref: `t${i}`, task: "test_task", args: { task_id: i, delay_ms: 4_000 } });
  }
  const ids = () => refs.map((r) => t.idOf.get(r) ?? `(no id for ${r})`);
  await waitFor(() => t.idOf.size === refs.length && [...t.events.values()].some((f) => f.length >= 2), 10_000, "tasks accepted and progressing");
  // A second watcher on another socket, subscribed from the start.
  const w = await openSocket(`${stack.server.ws}/ws`);
  const tw = tally(w);
  for (const id of ids()) w.send({ type: "subscribe", id });
  await waitFor(() => ids().every((id) => tw.events.has(id)), 5_000, "the second watcher to catch up");
  expect(await health()).toBe(200);
  const storedBefore = taskKeys();
  expect(storedBefore).toEqual(ids().map((id) => `${stack.env.TASKWIRE_PREFIX}:task:{${id}}`).sort());

  await stack.redis.kill();
  await waitFor(async () => (await health()) === 503, 5_000, "/healthz 503");
  s.send({ type: "submit", ref: "during", task: "test_task", args: { task_id: "during" }, key: "outage-key" });
  await waitFor(() => t.errors.length > 0, 5_000, "an answer to the submit during the outage");
  expect(t.errors).toEqual([{ type: "error", ref: "during", error: { code: "unavailable", message: expect.any(String) } }]);
  const post = await fetch(`${stack.server.http}/tasks`, { method: "POST", body: JSON.stringify({ task: "test_task", args: { task_id: "p" } }) });
  expect(post.status).toBe(503);
  expect(((await post.json()) as any).error.code).toBe("unavailable");
  await Bun.sleep(1_500); // longer than WORKER_DEAD_MS: every heartbeat is stale when Redis returns

  await stack.redis.restart();
  await waitFor(async () => (await health()) === 200, 10_000, "/healthz 200 again");
  await Promise.all([t.settled(ids, 20_000), tw.settled(ids, 20_000)]);
  await Bun.sleep(300);
  await Promise.all([t.stop(), tw.stop()]);

  for (const [ref, id] of refs.map((r) => [r, t.idOf.get(r)!] as const)) {
    for (const events of [t.events.get(id)!, tw.events.get(id)!]) {
      expectWellFormed(events);
      expect(events.at(-1)).toMatchObject({ type: "result", result: ref.startsWith("c") ? "done" : Number(ref.slice(1)) });
      // Both workers were silent past WORKER_DEAD_MS, yet neither took the other for dead.
      expect(events.filter((f) => f.reason === "worker_lost")).toEqual([]);
    }
    expect(tw.events.get(id)).toEqual(t.events.get(id)!);
  }
  expect(tw.errors).toEqual([]);
  // Nothing half-stored: the same task keys as before the outage, and no idempotency key.
  expect(taskKeys()).toEqual(storedBefore);
  expect(cli(stack.redis, "exists", `${stack.env.TASKWIRE_PREFIX}:idem:outage-key`)).toBe("0");
  // The sockets stayed open through it all.
  s.send({ type: "submit", ref: "after", task: "test_task", args: { task_id: "after" } });
  expect((await s.until((f) => f.type === "result", 10_000)).at(-1)).toMatchObject({ result: "after" });
  for (const x of [s, w]) x.close();
}, 60_000);

test("the server's subscription is cut again and again while events flow: what was published meanwhile comes from the log", async () => {
  const s = await openSocket(`${stack.server.ws}/ws`);
  const t = tally(s);
  s.send({ type: "submit", ref: "cd", task: "countdown", args: { steps: 60, interval_ms: 25 } });
  // Tasks whose only event is the final one, spread over the run: some end while the server is cut off.
  const refs = Array.from({ length: 12 }, (_, i) => `t${i}`);
  refs.forEach((ref, i) => s.send({ type: "submit", ref, task: "test_task", args: { task_id: ref, delay_ms: 100 + i * 110 } }));
  await waitFor(() => t.idOf.size === refs.length + 1, 5_000, "accepted");
  const id = t.idOf.get("cd")!;
  let cuts = 0;
  const deadline = Date.now() + 10_000;
  while (!(t.events.get(id) ?? []).some((f) => f.type === "result") && Date.now() < deadline) {
    // Both of the server's subscriptions: task channels, and its inbox (tasks submitted through it).
    const lines = cli(stack.redis, "client", "list").split("\n").filter((l) => / name=taskwire-server:(subscriber|inbox) /.test(l));
    const killed = lines.filter((l) => cli(stack.redis, "client", "kill", "id", /\bid=(\d+)/.exec(l)?.[1] ?? "0") === "1");
    if (killed.some((l) => l.includes(":inbox "))) cuts++;
    await Bun.sleep(120);
  }
  await t.settled(() => t.idOf.values(), 5_000);
  await Bun.sleep(200);
  await t.stop();
  expect(cuts).toBeGreaterThanOrEqual(3);
  const events = t.events.get(id)!;
  expectWellFormed(events);
  expect(events.length).toBe(61);
  for (const ref of refs) expect(t.events.get(t.idOf.get(ref)!)).toEqual([{ type: "result", id: t.idOf.get(ref), seq: 1, result: ref }]);
  expect(t.errors).toEqual([]);
  s.close();
}, 30_000);

test("a task handed to a parked worker that freezes, then Redis dies: thawed, the worker runs it, keeps trying to store the outcome, and the result arrives once after the restart", async () => {
  const [a, b] = stack.workers as [Proc, Proc];
  const q = `${stack.env.TASKWIRE_PREFIX}:{q}`;
  const blocked = () => cli(stack.redis, "client", "list").split("\n").filter((l) => / name=taskwire-worker:handoff .*flags=b /.test(l)).length;
  // Both parked with over a second of credit left (Redis's clock), so the next submit is handed to one of them.
  const creditsLeft = () => {
    const [sec, usec] = cli(stack.redis, "time").split("\n").map(Number);
    const now = sec! * 1000 + usec! / 1000;
    return cli(stack.redis, "zrange", `${q}:parked`, "0", "-1", "withscores").split("\n").filter((_, i) => i % 2 === 1).filter((x) => Number(x) - now > 1_000).length;
  };
  const frozen: Proc[] = [];
  try {
    for (let i = 0; frozen.length < 2; i++) {
      await waitFor(() => blocked() === 2, 5_000, "both workers parked");
      for (const w of [a, b]) process.kill(w.pid, "SIGSTOP");
      if (blocked() === 2 && creditsLeft() === 2) frozen.push(a, b);
      else for (const w of [a, b]) process.kill(w.pid, "SIGCONT");
      if (i === 10 && frozen.length < 2) throw new Error("could not freeze both workers while parked");
      if (frozen.length < 2) await Bun.sleep(300);
    }
    const s = await openSocket(`${stack.server.ws}/ws`);
    s.send({ type: "submit", ref: "held", task: "test_task", args: { task_id: "held" } });
    const { id } = await s.next();
    const lists = () => cli(stack.redis, "--scan", "--pattern", `${q}:active:*`).split("\n").filter(Boolean);
    await waitFor(() => lists().some((k) => cli(stack.redis, "lrange", k, "0", "-1").includes(id)), 3_000, "the task handed to a frozen worker");
    // Thawed with Redis down: the holder reads the hand-off from its socket and runs the task; its outcome
    // write waits for Redis.
    await stack.redis.kill();
    for (const w of frozen.splice(0)) process.kill(w.pid, "SIGCONT");
    await Bun.sleep(1_500);
    await stack.redis.restart();
    const frames = await s.until((f) => f.type === "result" || f.type === "failed", 20_000);
    expect(frames).toEqual([{ type: "result", id, seq: 1, result: "held" }]);
    expect(a.output() + b.output()).toContain("Redis unreachable; will keep trying to store the outcome of");
    await Bun.sleep(300);
    expect(s.pending()).toEqual([]);
    s.close();
  } finally {
    for (const w of frozen) process.kill(w.pid, "SIGCONT");
  }
}, 40_000);

test("a take whose reply was lost (the task started for a worker that never heard): once its connection comes back, the worker hands the task back and the result arrives once", async () => {
  const k = makeKeys(stack.env.TASKWIRE_PREFIX!);
  const c = createRedis(stack.redis.url, "command", makeLogger("outage-test", "silent"), "outage-test");
  try {
    await waitReady(c, 5_000);
    const [victim] = (await (await fetch(`${stack.server.http}/workers`)).json()) as { id: string }[];
    const id = "0193f7c2-6d1e-7a51-9c3e-41f0d2b8a9f0";
    // What a take_start whose reply never reached the victim leaves: the task started for it, in its processing
    // list. (Queued with a plain LPUSH, which hands nothing to a parked worker, then taken in the victim's name.)
    // One MULTI, so no parked worker's BLMOVE takes the id in between.
    const tx = c.multi();
    const scripted = tx as unknown as ScriptedRedis;
    scripted.twEnqueue(k.task(id), "test_task", '{"task_id":"lost"}', "{}", Date.now(), 60, "", "");
    tx.lpush(k.queue(), id);
    scripted.twTakeStart(k.queue(), k.active(victim!.id), 1, Date.now(), victim!.id, 60, k.task(""), k.events(""), k.parked(), k.handoff(victim!.id), 0);
    const res = await tx.exec();
    const rows = res![2]![1] as unknown[];
    expect(rows.slice(0, 2)).toEqual([1, 0]);
    const s = await openSocket(`${stack.server.ws}/ws`);
    s.send({ type: "subscribe", id });
    // The workers' command connections drop and come back: each checks its list for ids it holds but does not run.
    const commandConns = cli(stack.redis, "client", "list").split("\n").filter((l) => l.includes("name=taskwire-worker:command"));
    expect(commandConns.length).toBe(2);
    for (const l of commandConns) cli(stack.redis, "client", "kill", "id", /\bid=(\d+)/.exec(l)![1]!);
    const frames = await s.until((f) => f.type === "result" || f.type === "failed", 15_000);
    expect(frames).toEqual([
      { type: "queued", id, seq: 1, attempt: 1, reason: "worker_restarted" },
      { type: "result", id, seq: 2, result: "lost" },
    ]);
    const outputs = (stack.workers as Proc[]).map((w) => w.output()).join("");
    expect(outputs).toContain("1 tasks taken but not run here (a reply lost to a Redis outage) went back to the queue");
    s.close();
  } finally {
    c.disconnect();
  }
}, 30_000);

test("a full Redis (maxmemory reached, noeviction) refuses a submit with `unavailable`, not `internal`; it serves again once there is room", async () => {
  const s = await openSocket(`${stack.server.ws}/ws`);
  cli(stack.redis, "config", "set", "maxmemory-policy", "noeviction");
  cli(stack.redis, "config", "set", "maxmemory", "1");
  try {
    s.send({ type: "submit", ref: "full", task: "test_task", args: { task_id: 1 } });
    expect(await s.next()).toMatchObject({ type: "error", ref: "full", error: { code: "unavailable" } });
  } finally {
    cli(stack.redis, "config", "set", "maxmemory", "0");
  }
  s.send({ type: "submit", ref: "room", task: "test_task", args: { task_id: 2 } });
  const frames = await s.until((f) => f.type === "result" || f.type === "error");
  expect(frames.map((f) => f.type)).toEqual(["accepted", "result"]);
  s.close();
});
