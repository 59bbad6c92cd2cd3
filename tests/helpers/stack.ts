/** One call for the usual test setup: a private redis-server, a server and N workers sharing a unique prefix. */
import { type Proc, type ServerProc, startServer, startWorker } from "./procs.ts";
import { type TestRedis, startRedis } from "./redis.ts";
import { uniquePrefix } from "./util.ts";

export interface Stack {
  redis: TestRedis;
  server: ServerProc;
  workers: Proc[];
  env: Record<string, string>;
  addWorker(extraEnv?: Record<string, string>): Promise<Proc>;
  stop(): Promise<void>;
}

/** `redis`: run on a redis-server the caller started (and stops) instead of a new one, e.g. one stack per test. */
export async function startStack(name: string, opts: { workers?: number; env?: Record<string, string>; aof?: boolean; redis?: TestRedis } = {}): Promise<Stack> {
  const redis = opts.redis ?? (await startRedis({ aof: opts.aof }));
  const ownRedis = !opts.redis;
  const env = { REDIS_URL: redis.url, TASKWIRE_PREFIX: uniquePrefix(name), ...opts.env };
  const workers: Proc[] = [];
  try {
    const server = await startServer(env);
    const stack: Stack = {
      redis, server, workers, env,
      async addWorker(extraEnv = {}) {
        const w = await startWorker({ ...env, ...extraEnv });
        workers.push(w);
        return w;
      },
      async stop() {
        await Promise.all([stack.server.kill("SIGKILL"), ...workers.map((w) => w.kill("SIGKILL"))]);
        if (ownRedis) await redis.stop();
      },
    };
    for (let i = 0; i < (opts.workers ?? 1); i++) await stack.addWorker();
    return stack;
  } catch (err) {
    for (const w of workers) await w.kill("SIGKILL");
    if (ownRedis) await redis.stop();
    throw err;
  }
}
