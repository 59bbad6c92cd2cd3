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
  // The registry zset and the heartbeat keys share the {q} slot, so the MGET below is one slot on a cluster too.
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

/** Queue gauges summed over every shard. Separate reads (no MULTI): on a cluster each key has its own slot. */
export async function queueGauges(app: App): Promise<{ queueDepth: number; delayed: number; dead: number; stats: Record<string, string> }> {
  const k = app.keys;
  const r = app.redis;
  const shards = Array.from({ length: k.shards }, (_, i) => i);
  const [depths, delays, dead, stats] = await Promise.all([
    Promise.all(shards.map((i) => r.llen(k.queue(i)))),
    Promise.all(shards.map((i) => r.zcard(k.delayed(i)))),
    r.llen(k.dead),
    r.hgetall(k.stats),
  ]);
  const sum = (ns: number[]) => ns.reduce((a, b) => a + b, 0);
  return { queueDepth: sum(depths), delayed: sum(delays), dead, stats };
}

/** The next `n` ids to be taken from the queue shards, roughly in order (the oldest of each shard first). */
export async function nextQueued(app: App, n: number): Promise<string[]> {
  const k = app.keys;
  const lists = await Promise.all(Array.from({ length: k.shards }, (_, i) => app.redis.lrange(k.queue(i), -n, -1)));
  const out: string[] = [];
  // Taken from the right: each shard's last element runs next. Interleave the shards.
  const rev = lists.map((l) => l.reverse());
  for (let i = 0; out.length < n && rev.some((l) => i < l.length); i++) for (const l of rev) if (i < l.length && out.length < n) out.push(l[i]!);
  return out;
}
