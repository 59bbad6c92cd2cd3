/**
 * What the relay floor's server and worker share: its Redis keys (under "relay:", beside nothing of
 * taskwire's), the one message format each hop carries, and the stored mode's two scripts.
 */
export const QUEUE = "relay:queue";
export const redisUrl = () => process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
/** `--stack relay-stored`: the least storing and acknowledging that "losing nothing" needs (relay-server.ts). */
export const STORED = process.env.RELAY_STORED === "1";
/**
 * `--stack relay-claimed`: the stored floor, plus a claim before each task runs, whose reply the worker
 * waits for (taskwire's start). Paired against relay-stored, it prices that round trip alone.
 */
export const CLAIMED = STORED && process.env.RELAY_CLAIMED === "1";
export const taskKey = (id: string) => `relay:task:${id}`;
export const eventsKey = (id: string) => `relay:events:${id}`;

/** Stored mode, server: the task and its queue entry in one script, as taskwire's submit on one Redis. */
export const STORE_TASK_LUA = `
local t = redis.call("TIME")
redis.call("HSET", KEYS[1], "args", ARGV[2], "state", "queued", "created", t[1], "seq", 0, "inbox", ARGV[3])
redis.call("EXPIRE", KEYS[1], 600)
redis.call("LPUSH", KEYS[2], ARGV[1])
return 1`;

/** Stored mode, worker: the outcome (state, result, a numbered log entry, TTLs), then its PUBLISH. */
export const STORE_OUTCOME_LUA = `
local t = redis.call("TIME")
local seq = redis.call("HINCRBY", KEYS[1], "seq", 1)
redis.call("HSET", KEYS[1], "state", "succeeded", "finished", t[1], "result", ARGV[3])
redis.call("RPUSH", KEYS[2], seq .. " t " .. ARGV[3])
redis.call("EXPIRE", KEYS[2], 600)
redis.call("EXPIRE", KEYS[1], 600)
redis.call("PUBLISH", ARGV[1], ARGV[2] .. " " .. ARGV[3])
return seq`;

/** Claimed mode, worker: marks the task running under this worker and counts the attempt, or refuses. */
export const CLAIM_LUA = `
local t = redis.call("TIME")
local f = redis.call("HMGET", KEYS[1], "state", "args", "attempts")
if f[1] ~= "queued" then return false end
redis.call("HSET", KEYS[1], "state", "running", "started", t[1], "worker", ARGV[1], "attempts", tonumber(f[3] or "0") + 1)
redis.call("EXPIRE", KEYS[1], 600)
return f[2]`;

/** Splits "<a> <b> <rest>" at its first two spaces. */
export function split3(s: string): [string, string, string] {
  const i = s.indexOf(" ");
  const j = s.indexOf(" ", i + 1);
  return [s.slice(0, i), s.slice(i + 1, j), s.slice(j + 1)];
}
