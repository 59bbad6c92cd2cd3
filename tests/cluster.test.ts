/**
 * Scale-out on a 3-master Redis Cluster the test starts itself: 2 servers and 3 workers; tasks submitted
 * on A are watched, replayed and cancelled on B, a worker is killed mid-run, and 5,000 tasks spread over
 * every node and several queue shards each deliver their result once.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { ConfigError, loadConfig, parseClusterUrl } from "../lib/config.ts";
import { type TestCluster, startCluster } from "./helpers/cluster.ts";
import { type Proc, type ServerProc, startServer, startWorker } from "./helpers/procs.ts";
import { cli } from "./helpers/redis.ts";
import { uniquePrefix, waitFor } from "./helpers/util.ts";
import { type TestSocket, openSocket } from "./helpers/ws.ts";

let cluster: TestCluster;
let a: ServerProc;
let b: ServerProc;
const workers: Proc[] = [];
const prefix = uniquePrefix("cluster");
const common = { TASKWIRE_PREFIX: prefix, WORKER_HEARTBEAT_MS: "200", WORKER_DEAD_MS: "1200", MAX_INFLIGHT_PER_SOCKET: "5000" };
let envA: Record<string, string>;

beforeAll(async () => {
  cluster = await startCluster();
  // Both ways of naming a cluster: the node list, and the URL form.
  envA = { ...common, REDIS_CLUSTER_NODES: cluster.nodes };
  [a, b] = await Promise.all([startServer(envA), startServer({ ...common, REDIS_URL: cluster.url })]);
  for (let i = 0; i < 3; i++) workers.push(await startWorker(envA));
}, 60_000);
afterAll(async () => {
  await Promise.all([a, b, ...workers].filter(Boolean).map((p) => p.kill("SIGKILL")));
  await cluster?.stop();
});

/** redis-cli on one node, following MOVED redirects. */
const rc = (port: number, ...args: string[]) => cli({ port }, "-c", ...args);

test("workers announce 8 queue shards, and GET /workers on either server lists all three", async () => {
  expect(workers[0]!.output()).toContain("8 queue shards");
  for (const base of [a.http, b.http]) {
    const list = (await (await fetch(`${base}/workers`)).json()) as { pid: number }[];
    expect(list.map((w) => w.pid).sort()).toEqual(workers.map((w) => w.pid).sort());
  }
});

test("the dashboard's feed reports Redis memory summed over the masters, with no maxmemory as unlimited", async () => {
  const s = await openSocket(`${a.ws}/admin`);
  const snap = await s.until((f) => f.type === "snapshot");
  const redis = snap.at(-1).redis as { used_bytes: number; max_bytes: number | null };
  const used = cluster.ports.map((port) => Number(/used_memory:(\d+)/.exec(cli({ port }, "info", "memory"))![1]));
  const sum = used.reduce((x, y) => x + y, 0);
  expect(redis.used_bytes).toBeGreaterThan(Math.max(...used)); // more than any one master: the sum
  expect(redis.used_bytes).toBeGreaterThan(sum / 2);
  expect(redis.used_bytes).toBeLessThan(sum * 2);
  expect(redis.max_bytes).toBeNull();
  s.close();
});

test("/async_task/: the seed flow answers running, then success with the result", async () => {
  const s = await openSocket(`${a.ws}/async_task/`);
  s.send({ task_id: 42, delay_ms: 20 });
  expect(await s.next()).toMatchObject({ msg: "task 42 is running...", flag: true });
  expect(await s.next()).toEqual({ msg: "success", flag: true, data: { result: 42 } });
  expect((await s.closed).code).toBe(1000);
});

test("a countdown submitted on A is watched live on B, then replayed on B with `after`", async () => {
  const sa = await openSocket(`${a.ws}/ws`);
  const sb = await openSocket(`${b.ws}/ws`);
  sa.send({ type: "submit", ref: "c", task: "countdown", args: { steps: 10, interval_ms: 30 } });
  const { id } = await sa.next();
  sb.send({ type: "subscribe", id });
  const [onA, onB] = await Promise.all([sa.until((f) => f.type === "result"), sb.until((f) => f.type === "result")]);
  for (const events of [onA, onB]) {
    expect(events.map((e) => e.seq)).toEqual(Array.from({ length: 11 }, (_, i) => i + 1));
    expect(events.at(-1)).toMatchObject({ type: "result", id, result: "done" });
  }
  sb.send({ type: "subscribe", id, after: 7 });
  expect((await sb.until((f) => f.type === "result")).map((e) => e.seq)).toEqual([8, 9, 10, 11]);
  // The task's keys live on the node that owns its slot.
  const slot = Number(rc(cluster.ports[0]!, "cluster", "keyslot", `${prefix}:task:{${id}}`));
  expect(Number(rc(cluster.ports[0]!, "cluster", "keyslot", `${prefix}:events:{${id}}`))).toBe(slot);
  for (const s of [sa, sb]) s.close();
});

test("a task submitted on A is cancelled through B; B's HTTP view shows it cancelled", async () => {
  const sa = await openSocket(`${a.ws}/ws`);
  sa.send({ type: "submit", ref: "long", task: "countdown", args: { steps: 100, interval_ms: 50 } });
  const { id } = await sa.next();
  await sa.until((f) => f.type === "progress");
  expect((await fetch(`${b.http}/tasks/${id}`, { method: "DELETE" })).status).toBe(202);
  const rest = await sa.until((f) => f.type === "cancelled", 5_000);
  expect(rest.at(-1)).toMatchObject({ type: "cancelled", id });
  expect(await (await fetch(`${b.http}/tasks/${id}`)).json()).toMatchObject({ id, state: "cancelled" });
  sa.close();
});

/** Submits n test_tasks round-robin over the sockets; resolves with how often each result value arrived. */
async function runMany(sockets: TestSocket[], n: number, delayMs: number, during?: () => Promise<void>): Promise<Map<string, number>> {
  const results = new Map<string, number>();
  const perSocket = sockets.map((_, si) => Math.floor(n / sockets.length) + (si < n % sockets.length ? 1 : 0));
  const seen = sockets.map(async (s, si) => {
    for (let done = 0; done < perSocket[si]!;) {
      const f = await s.next(30_000);
      if (f.type === "result") {
        results.set(String(f.result), (results.get(String(f.result)) ?? 0) + 1);
        done++;
      } else if (f.type === "failed" || f.type === "error") throw new Error(`socket ${si}: ${JSON.stringify(f)}`);
    }
  });
  for (let i = 0; i < n; i++) {
    sockets[i % sockets.length]!.send({ type: "submit", ref: `t${i}`, task: "test_task", args: { task_id: `v${i}`, delay_ms: delayMs } });
  }
  await during?.();
  await Promise.all(seen);
  return results;
}

function expectEachOnce(results: Map<string, number>, n: number): void {
  expect(results.size).toBe(n);
  for (let i = 0; i < n; i++) expect(results.get(`v${i}`)).toBe(1);
}

test("200 tasks over both servers with a worker killed mid-run: every result arrives once", async () => {
  const sockets = [await openSocket(`${a.ws}/ws`), await openSocket(`${b.ws}/ws`)];
  const results = await runMany(sockets, 200, 300, async () => {
    await Bun.sleep(150);
    await workers.shift()!.kill("SIGKILL");
  });
  expectEachOnce(results, 200);
  for (const s of sockets) s.close();
  workers.push(await startWorker(envA)); // three again for the next test
}, 40_000);

test("5,000 tasks over six sockets on both servers: spread over every node and queue shard, each result once", async () => {
  const sockets: TestSocket[] = [];
  for (let i = 0; i < 6; i++) sockets.push(await openSocket(`${(i % 2 ? b : a).ws}/ws`));
  const n = 5_000;
  // Workers paused while submitting, so the backlog shows where tasks land; then they drain it.
  for (const w of workers) process.kill(w.pid, "SIGSTOP");
  let shardDepths: number[] = [];
  let dbsizes: number[] = [];
  try {
    const results = await runMany(sockets, n, 0, async () => {
      const queued = () => Array.from({ length: 8 }, (_, i) => Number(rc(cluster.ports[0]!, "llen", `${prefix}:{q${i || ""}}:queue`)));
      const deadline = Date.now() + 20_000;
      // Up to one id per shard per worker may already sit in a paused worker's processing list.
      while (queued().reduce((x, y) => x + y, 0) < n - 8 * 3 && Date.now() < deadline) await Bun.sleep(50);
      shardDepths = queued();
      dbsizes = cluster.ports.map((p) => Number(cli({ port: p }, "dbsize")));
      for (const w of workers) process.kill(w.pid, "SIGCONT");
    });
    expectEachOnce(results, n);
  } finally {
    for (const w of workers) process.kill(w.pid, "SIGCONT");
    for (const s of sockets) s.close();
  }
  // Round-robin over 8 shards: each holds about n/8 (the shards' slots span all three masters).
  expect(shardDepths.reduce((x, y) => x + y, 0)).toBeGreaterThanOrEqual(n - 24);
  expect(shardDepths.every((d) => d > n / 8 - 100)).toBe(true);
  for (const size of dbsizes) expect(size).toBeGreaterThan(n / 3 / 2);
  // The fleet counters (written after each task's own script) count every test_task once: 1 + 200 + n.
  await waitFor(() => rc(cluster.ports[0]!, "hget", `${prefix}:stats`, "succeeded:test_task") === String(1 + 200 + n), 5_000, "the counters");
}, 90_000);

test("config: a cluster is named by REDIS_CLUSTER_NODES or a redis+cluster:// URL; bad values are refused with the fix", () => {
  const nodes = loadConfig({ REDIS_CLUSTER_NODES: "10.0.0.1:7000, 10.0.0.2:7001" });
  expect(nodes.REDIS_URL).toBe("redis+cluster://10.0.0.1:7000,10.0.0.2:7001");
  expect(nodes.queueShards).toBe(8);
  expect(parseClusterUrl("rediss+cluster://u:p%40ss@h1:7000,[::1]:7001")).toEqual({
    nodes: [{ host: "h1", port: 7000 }, { host: "::1", port: 7001 }], username: "u", password: "p@ss", tls: true,
  });
  expect(loadConfig({ REDIS_URL: "redis://h:6379" }).queueShards).toBe(1);
  expect(loadConfig({ REDIS_URL: "redis+cluster://h:1", QUEUE_SHARDS: "3" }).queueShards).toBe(3);
  const refused = (env: Record<string, string>) => {
    try {
      loadConfig(env);
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as Error).message;
    }
    throw new Error(`accepted ${JSON.stringify(env)}`);
  };
  expect(refused({ REDIS_CLUSTER_NODES: "10.0.0.1" })).toContain("REDIS_CLUSTER_NODES=\"10.0.0.1\": list nodes as host:port");
  expect(refused({ REDIS_CLUSTER_NODES: "a:1,b:99999" })).toContain("REDIS_CLUSTER_NODES");
  expect(refused({ REDIS_URL: "redis+cluster://" })).toContain("a cluster URL lists nodes as host:port");
  expect(refused({ REDIS_URL: "redis+cluster://h:1/0" })).toContain("REDIS_URL");
  expect(refused({ REDIS_URL: "redis://h:1", REDIS_CLUSTER_NODES: "h:2" })).toContain("set one of them");
  expect(refused({ QUEUE_SHARDS: "0" })).toContain("QUEUE_SHARDS");
});
