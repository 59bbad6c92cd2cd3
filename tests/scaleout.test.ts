/** Scale-out on one Redis: 2 servers and 3 workers; tasks submitted on A are watched, replayed and cancelled on B, with a worker killed mid-run. */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { loadConfig } from "../lib/config.ts";
import { type ServerProc, startServer, startWorker } from "./helpers/procs.ts";
import { type Stack, startStack } from "./helpers/stack.ts";
import { openSocket } from "./helpers/ws.ts";

/** WORKER_CONCURRENCY when unset. */
const DEFAULT_CONCURRENCY = loadConfig({}).WORKER_CONCURRENCY;

let stack: Stack;
let serverB: ServerProc;
const fast = { WORKER_HEARTBEAT_MS: "200", WORKER_DEAD_MS: "1200" };

beforeAll(async () => {
  stack = await startStack("scale", { workers: 3, env: fast });
  serverB = await startServer(stack.env);
});
afterAll(async () => {
  await serverB?.kill("SIGKILL");
  await stack?.stop();
});

test("GET /workers on either server lists all three workers", async () => {
  for (const base of [stack.server.http, serverB.http]) {
    const workers = (await (await fetch(`${base}/workers`)).json()) as { pid: number; concurrency: number }[];
    expect(workers.map((w) => w.pid).sort()).toEqual(stack.workers.map((w) => w.pid).sort());
    expect(workers.every((w) => w.concurrency === DEFAULT_CONCURRENCY)).toBe(true);
  }
});

test("a task submitted on A is watched live on B, and replayed on B after it ends", async () => {
  const a = await openSocket(`${stack.server.ws}/ws`);
  const b = await openSocket(`${serverB.ws}/ws`);
  a.send({ type: "submit", ref: "r1", task: "countdown", args: { steps: 10, interval_ms: 30 } });
  const accepted = await a.next();
  expect(accepted).toMatchObject({ type: "accepted", ref: "r1" });
  b.send({ type: "subscribe", id: accepted.id });
  const onB = await b.until((f) => f.type === "result");
  const onA = await a.until((f) => f.type === "result");
  for (const events of [onA, onB]) {
    expect(events.map((e) => e.seq)).toEqual(Array.from({ length: 11 }, (_, i) => i + 1));
    expect(events.at(-1)).toMatchObject({ type: "result", result: "done" });
  }
  const c = await openSocket(`${serverB.ws}/ws`);
  c.send({ type: "subscribe", id: accepted.id, after: 7 });
  const replay = await c.until((f) => f.type === "result");
  expect(replay.map((e) => e.seq)).toEqual([8, 9, 10, 11]);
  for (const s of [a, b, c]) s.close();
});

test("a task submitted on A is cancelled through B", async () => {
  const a = await openSocket(`${stack.server.ws}/ws`);
  a.send({ type: "submit", ref: "long", task: "countdown", args: { steps: 100, interval_ms: 50 } });
  const { id } = await a.next();
  await a.until((f) => f.type === "progress");
  const res = await fetch(`${serverB.http}/tasks/${id}`, { method: "DELETE" });
  expect(res.status).toBe(202);
  const rest = await a.until((f) => f.type === "cancelled", 5_000);
  expect(rest.at(-1)).toMatchObject({ type: "cancelled", id });
  a.close();
});

test("200 tasks over both servers with a worker killed mid-run: every result arrives once", async () => {
  const sockets = [await openSocket(`${stack.server.ws}/ws`), await openSocket(`${serverB.ws}/ws`)];
  const n = 200;
  const results = new Map<string, number>();
  const seen = sockets.map(async (s, si) => {
    const mine = n / 2;
    let done = 0;
    while (done < mine) {
      const f = await s.next(20_000);
      if (f.type === "result") {
        results.set(String(f.result), (results.get(String(f.result)) ?? 0) + 1);
        done++;
      } else if (f.type === "failed" || f.type === "error") throw new Error(`socket ${si}: ${JSON.stringify(f)}`);
    }
  });
  for (let i = 0; i < n; i++) {
    sockets[i % 2]!.send({ type: "submit", ref: `t${i}`, task: "test_task", args: { task_id: `v${i}`, delay_ms: 300 } });
  }
  await Bun.sleep(150);
  await stack.workers[0]!.kill("SIGKILL");
  await Promise.all(seen);
  expect(results.size).toBe(n);
  expect([...results.values()].every((c) => c === 1)).toBe(true);
  for (const s of sockets) s.close();
}, 40_000);

test("a server or worker with another QUEUE_SHARDS than the fleet's refuses to start (exit 2), naming the value to use", async () => {
  const server = startServer({ ...stack.env, QUEUE_SHARDS: "3" }).then(() => "started", (err: Error) => err.message);
  const worker = startWorker({ ...stack.env, QUEUE_SHARDS: "2" }).then(() => "started", (err: Error) => err.message);
  for (const [what, uses] of [[await server, 3], [await worker, 2]] as const) {
    expect(what).toContain("exited 2");
    expect(what).toContain(`this process uses ${uses} queue shards, but the fleet on this Redis (prefix ${stack.env.TASKWIRE_PREFIX}) uses 1; set QUEUE_SHARDS=1`);
  }
  // The fleet's own count is still welcome.
  const again = await startServer(stack.env);
  await again.kill("SIGKILL");
});
