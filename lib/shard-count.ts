/**
 * Keeps a fleet on one QUEUE_SHARDS: the first server or worker to start on a Redis and prefix records its
 * count; one that disagrees refuses to start. A worker with fewer shards would never take from the others,
 * so tasks queued there would wait forever without an error anywhere.
 */
import { ConfigError } from "./config.ts";
import type { Keys } from "./keys.ts";
import type { ScriptedRedis } from "./scripts.ts";

/** Records this process's shard count, or throws ConfigError (naming the fix) when the fleet uses another. */
export async function agreeOnShards(redis: ScriptedRedis, keys: Keys): Promise<void> {
  const key = keys.shardCount;
  const fleet = (await redis.set(key, String(keys.shards), "NX", "GET")) as string | null;
  if (fleet === null || Number(fleet) === keys.shards) return;
  throw new ConfigError(
    `QUEUE_SHARDS: this process uses ${keys.shards} queue shard${keys.shards === 1 ? "" : "s"}, but the fleet on this Redis ` +
      `(prefix ${keys.prefix}) uses ${fleet}; set QUEUE_SHARDS=${fleet} on every server and worker. To change the count, ` +
      `stop the whole fleet, let the queues drain, then DEL ${key}.`,
  );
}
