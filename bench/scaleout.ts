/**
 * `bun run bench/scaleout.ts`: throughput of one server with 1, 2 and 4 workers, on one redis-server and
 * on a 3-master Redis Cluster, measured with bench/load.ts (/ws closed loop, every result checked once).
 * Prints a table (and the raw results as JSON with --json).
 *
 *   bun run bench/scaleout.ts [--workers 1,2,4] [--targets redis,cluster] [--seconds 4] [--warmup 1]
 *                             [--sockets 20] [--inflight 20] [--concurrency 16] [--shards N] [--json]
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { type TestCluster, startCluster } from "../tests/helpers/cluster.ts";
import { type Proc, ROOT, type ServerProc, startServer, startWorker } from "../tests/helpers/procs.ts";
import { type TestRedis, startRedis } from "../tests/helpers/redis.ts";
import type { LoadResult } from "./load.ts";

const { values } = parseArgs({
  options: {
    workers: { type: "string", default: "1,2,4" },
    targets: { type: "string", default: "redis,cluster" },
    seconds: { type: "string", default: "4" },
    warmup: { type: "string", default: "1" },
    sockets: { type: "string", default: "20" },
    inflight: { type: "string", default: "20" },
    concurrency: { type: "string", default: "16" },
    shards: { type: "string" },
    json: { type: "boolean", default: false },
  },
});
const counts = values.workers!.split(",").map(Number);
const targets = values.targets!.split(",") as ("redis" | "cluster")[];
if (counts.some((n) => !Number.isInteger(n) || n < 1 || n > 16)) throw new Error(`--workers: whole numbers 1..16 separated by commas; got ${values.workers}`);
if (targets.some((t) => t !== "redis" && t !== "cluster")) throw new Error(`--targets: redis and/or cluster; got ${values.targets}`);
const log = (s: string) => process.stderr.write(`${s}\n`);

interface Row {
  target: "redis" | "cluster";
  workers: number;
  result: LoadResult;
}

/** One bench/load.ts run against `server`; its last stdout line is the result. */
async function load(server: ServerProc, pids: string): Promise<LoadResult> {
  const cmd = [
    process.execPath, "run", join(ROOT, "bench", "load.ts"), "ws-closed", "--url", server.http, "--pids", pids,
    "--seconds", values.seconds!, "--warmup", values.warmup!, "--sockets", values.sockets!, "--inflight", values.inflight!, "--quiet",
  ];
  const p = Bun.spawn(cmd, { cwd: ROOT, stdout: "pipe", stderr: "inherit" });
  const out = await new Response(p.stdout).text();
  await p.exited;
  try {
    return JSON.parse(out.trim().split("\n").pop() ?? "") as LoadResult;
  } catch {
    throw new Error(`load generator exited ${p.exitCode} without a result: ${out.slice(-500)}`);
  }
}

async function measure(target: "redis" | "cluster", workers: number): Promise<LoadResult> {
  let redis: TestRedis | undefined;
  let cluster: TestCluster | undefined;
  const procs: Proc[] = [];
  try {
    let url: string;
    let redisPids: number[];
    if (target === "redis") {
      redis = await startRedis();
      url = redis.url;
      redisPids = [redis.proc.pid];
    } else {
      cluster = await startCluster();
      url = cluster.url;
      redisPids = cluster.ports.map((p) => Number(Bun.spawnSync(["redis-cli", "-p", String(p), "info", "server"]).stdout.toString().match(/process_id:(\d+)/)?.[1] ?? 0));
    }
    const env: Record<string, string> = {
      REDIS_URL: url, TASKWIRE_PREFIX: "bench-scale", RESULT_TTL_S: "600", LOG_LEVEL: "warn",
      WORKER_CONCURRENCY: values.concurrency!, ...(values.shards ? { QUEUE_SHARDS: values.shards } : {}),
    };
    const server = await startServer(env);
    procs.push(server);
    for (let i = 0; i < workers; i++) procs.push(await startWorker({ ...env, LOG_LEVEL: "info" }));
    const pids = [`server=${server.pid}`, ...procs.slice(1).map((w, i) => `worker${i + 1}=${w.pid}`), ...redisPids.map((p, i) => `redis${i + 1}=${p}`)].join(",");
    return await load(server, pids);
  } finally {
    await Promise.all(procs.map((p) => p.kill("SIGKILL")));
    await redis?.stop();
    await cluster?.stop();
  }
}

const rows: Row[] = [];
for (const target of targets) {
  for (const workers of counts) {
    log(`scaleout: ${target}, ${workers} worker${workers === 1 ? "" : "s"} ...`);
    rows.push({ target, workers, result: await measure(target, workers) });
  }
}

const cpuOf = (r: LoadResult, role: string) => Object.entries(r.cpuMs).filter(([k]) => k.startsWith(role)).reduce((a, [, v]) => a + v, 0);
const pad = (s: string | number, n: number) => String(s).padStart(n);
const base = new Map(targets.map((t) => [t, rows.find((r) => r.target === t)?.result.throughput ?? 0]));
console.log(`/ws closed loop, ${values.sockets} sockets x ${values.inflight} in flight, ${values.seconds} s; WORKER_CONCURRENCY=${values.concurrency}`);
console.log("| redis   | workers | tasks/s | vs 1 worker | p50 ms | p99 ms | CPU ms/task | server CPU s | workers CPU s | redis CPU s | ok |");
console.log("| ------- | ------: | ------: | ----------: | -----: | -----: | ----------: | -----------: | ------------: | ----------: | -- |");
for (const { target, workers, result: r } of rows) {
  const ratio = (r.throughput / (base.get(target) || 1)).toFixed(2);
  const s = (ms: number) => (ms / 1000).toFixed(1);
  console.log(`| ${target.padEnd(7)} | ${pad(workers, 7)} | ${pad(Math.round(r.throughput), 7)} | ${pad(`${ratio}x`, 11)} | ${pad(r.latency.p50.toFixed(2), 6)} | ${pad(r.latency.p99.toFixed(2), 6)} | ${pad(r.cpuPerTaskMs?.toFixed(3) ?? "?", 11)} | ${pad(s(cpuOf(r, "server")), 12)} | ${pad(s(cpuOf(r, "worker")), 13)} | ${pad(s(cpuOf(r, "redis")), 11)} | ${r.ok ? "yes" : "NO"} |`);
}
if (values.json) console.log(JSON.stringify(rows));
