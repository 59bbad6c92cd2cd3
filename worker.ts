/**
 * The worker process: config -> Redis clients (command, subscriber, one blocking per queue shard, and on one
 * Redis Bun's client for the per-task scripts) -> the take/run loops. SIGTERM drains within WORKER_GRACE_MS and exits 0.
 */
import { ConfigError, loadConfig, type Config } from "./lib/config.ts";
import { makeKeys } from "./lib/keys.ts";
import { type Logger, makeLogger } from "./lib/log.ts";
import { applyRuntimeEnv } from "./lib/runtime-env.ts";
import { BunRedis, useBunRedis } from "./lib/bun-redis.ts";
import { createRedis, waitReady } from "./lib/redis.ts";
import { agreeOnShards } from "./lib/shard-count.ts";
import { Worker } from "./lib/worker.ts";
import { type BlockingMove, IoredisBlocking } from "./lib/worker/blocking.ts";
import { redactUrl } from "./server.ts";
import { tasks } from "./tasks/index.ts";

export async function startWorker(config: Config, log: Logger): Promise<{ worker: Worker; close(): Promise<void> }> {
  const name = "taskwire-worker";
  const command = createRedis(config.REDIS_URL, "command", log, name);
  const subscriber = createRedis(config.REDIS_URL, "subscriber", log, name);
  // Bun's client where it can serve (one Redis): the per-task commands cost the worker less CPU (lib/bun-redis.ts).
  const native = useBunRedis(config);
  const taskClient = native ? new BunRedis(config.REDIS_URL, "command", log, name) : undefined;
  const blocking: BlockingMove[] = Array.from({ length: config.queueShards }, () =>
    native ? new BunRedis(config.REDIS_URL, "blocking", log, name) : new IoredisBlocking(createRedis(config.REDIS_URL, "blocking", log, name)));
  try {
    await Promise.all([
      ...[command, subscriber].map((c) => waitReady(c, 10_000)),
      ...[...blocking, ...(taskClient ? [taskClient] : [])].map((c) => c.connect(10_000)),
    ]);
  } catch (err) {
    taskClient?.close();
    for (const b of blocking) b.close();
    throw err;
  }
  const keys = makeKeys(config.TASKWIRE_PREFIX, config.queueShards);
  await agreeOnShards(command, keys);
  const worker = new Worker({ command, blocking, subscriber, tasks: taskClient }, keys, {
    concurrency: config.WORKER_CONCURRENCY,
    ttlS: config.RESULT_TTL_S,
    heartbeatMs: config.WORKER_HEARTBEAT_MS,
    deadMs: config.WORKER_DEAD_MS,
    eventsMax: config.EVENTS_MAX,
    maxLosses: config.TASK_MAX_LOSSES,
  }, log);
  await worker.start();
  log.info(`worker ${worker.id} taking tasks from ${redactUrl(config.REDIS_URL)} prefix ${config.TASKWIRE_PREFIX}, ${config.queueShards} queue shard${config.queueShards === 1 ? "" : "s"}, concurrency ${config.WORKER_CONCURRENCY}, per-task commands over ${native ? "Bun's Redis client" : "ioredis"}, tasks: ${Object.keys(tasks).join(" ")}`);
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= worker.close(config.WORKER_GRACE_MS).finally(async () => {
      for (const c of [command, subscriber]) await c.quit().catch(() => c.disconnect());
      taskClient?.close(); // the blocking connections were closed by worker.close()
    }));
  return { worker, close };
}

export async function main(env = process.env): Promise<void> {
  let config: Config;
  try {
    config = loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(2);
    }
    throw err;
  }
  const log = makeLogger(`worker ${process.pid}`, config.LOG_LEVEL);
  let running: Awaited<ReturnType<typeof startWorker>>;
  try {
    running = await startWorker(config, log);
  } catch (err) {
    if (err instanceof ConfigError) {
      log.error(err.message);
      process.exit(2);
    }
    log.error(`cannot start: ${(err as Error).message} (REDIS_URL=${redactUrl(config.REDIS_URL)}; is redis-server running?)`);
    process.exit(1);
  }
  const stop = (sig: string) => {
    log.info(`${sig}: finishing running tasks (up to ${config.WORKER_GRACE_MS} ms), then exiting`);
    running.close().finally(() => process.exit(0));
  };
  process.once("SIGTERM", () => stop("SIGTERM"));
  process.once("SIGINT", () => stop("SIGINT"));
}

if (import.meta.main) {
  applyRuntimeEnv();
  await main();
}
