/** Reads the fleet's shared state from Redis: live workers from their heartbeats, queue gauges, counters. */
import type { App } from "./app.ts";
import { isCluster } from "./redis.ts";

export interface WorkerInfo {
  id: string;
  host: string;
  pid: number;
  concurrency: number;
  started: number;
  running: { id: string; task: string; attempt: number; started: number }[];
  last_seen: number;
}

export interface Registry {
  /** Redis's clock (ms) when read: the clock of last_seen and of every stored time. */
  now: number;
  live: WorkerInfo[];
  /** Registered but silent past WORKER_DEAD_MS (not reaped yet), newest first: [id, last_seen]. */
  silent: [string, number][];
}

/** Who is alive, by their heartbeats on Redis's clock (beat.lua, registry.lua), not by this host's. */
export async function readRegistry(app: App, silentMax = 0): Promise<Registry> {
  const k = app.keys;
  const [now, liveFlat, silentFlat] = await app.redis.twRegistry(k.workers, app.config.WORKER_DEAD_MS, silentMax);
  const silent: [string, number][] = [];
  for (let i = 0; i + 1 < silentFlat.length; i += 2) silent.push([silentFlat[i]!, Number(silentFlat[i + 1])]);
  const live: WorkerInfo[] = [];
  if (liveFlat.length > 0) {
    // The registry zset and the heartbeat keys share the {q} slot, so the MGET is one slot on a cluster too.
    const infos = await app.redis.mget(liveFlat.filter((_, i) => i % 2 === 0).map((w) => k.worker(w)));
    infos.forEach((raw, i) => {
      if (!raw) return;
      try {
        live.push({ ...(JSON.parse(raw) as Omit<WorkerInfo, "last_seen">), last_seen: Number(liveFlat[i * 2 + 1]) });
      } catch {
        // written by a different build: skip rather than break the listing
      }
    });
  }
  return { now: Number(now), live, silent };
}

export async function listWorkers(app: App): Promise<WorkerInfo[]> {
  return (await readRegistry(app)).live;
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

/**
 * What Redis holds (used_memory) and may hold (maxmemory; null when unlimited), summed over a cluster's
 * masters. The whole Redis's figures: taskwire's tasks, and anything else kept there.
 */
export async function redisMemory(app: App): Promise<{ used: number; max: number | null }> {
  const nodes = isCluster(app.redis) ? app.redis.nodes("master") : [app.redis];
  const infos = await Promise.all(nodes.map((n) => n.info("memory")));
  let used = 0;
  let max: number | null = 0;
  for (const info of infos) {
    used += Number(/^used_memory:(\d+)/m.exec(info)?.[1] ?? 0);
    const nodeMax = Number(/^maxmemory:(\d+)/m.exec(info)?.[1] ?? 0);
    // One master without a limit makes the whole unlimited: it can take what the others refuse.
    max = max === null || nodeMax === 0 ? null : max + nodeMax;
  }
  return { used, max };
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
