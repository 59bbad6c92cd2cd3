/** Reads the fleet's shared state from Redis: live workers from their heartbeats, queue gauges, counters. */
import type { App } from "./app.ts";

export interface WorkerInfo {
  id: string;
  host: string;
  pid: number;
  concurrency: number;
  started: number;
  running: { id: string; task: string; attempt: number; started: number }[];
  last_seen: number;
}

export async function listWorkers(app: App): Promise<WorkerInfo[]> {
  const k = app.keys;
  const ids = await app.redis.zrangebyscore(k.workers, Date.now() - app.config.WORKER_DEAD_MS, "+inf", "WITHSCORES");
  if (ids.length === 0) return [];
  const wids = ids.filter((_, i) => i % 2 === 0);
  const infos = await app.redis.mget(wids.map((w) => k.worker(w)));
  const out: WorkerInfo[] = [];
  infos.forEach((raw, i) => {
    if (!raw) return;
    try {
      out.push({ ...(JSON.parse(raw) as Omit<WorkerInfo, "last_seen">), last_seen: Number(ids[i * 2 + 1]) });
    } catch {
      // written by a different build: skip rather than break the listing
    }
  });
  return out;
}

export async function queueGauges(app: App): Promise<{ queueDepth: number; delayed: number; dead: number; stats: Record<string, string> }> {
  const k = app.keys;
  const res = await app.redis.multi().llen(k.queue).zcard(k.delayed).llen(k.dead).hgetall(k.stats).exec();
  const val = (i: number) => res?.[i]?.[1];
  return { queueDepth: Number(val(0) ?? 0), delayed: Number(val(1) ?? 0), dead: Number(val(2) ?? 0), stats: (val(3) as Record<string, string>) ?? {} };
}
