--[[
  Schedules the next attempt of a task whose handler threw or timed out, and tells its watchers with
  a `queued` event carrying the next attempt's number, the delay (backoff with jitter) and the error.
  Input:
    KEYS[1] task hash  KEYS[2] events list  KEYS[3] this worker's processing list  KEYS[4] delayed zset
    ARGV[1] id  ARGV[2] attempt that failed  ARGV[3] error JSON  ARGV[4] due (ms)  ARGV[5] delay (ms)
    ARGV[6] channel
  Output:
    seq of the `queued` event;  0 this attempt is no longer current (dropped)
]]
redis.call("LREM", KEYS[3], -1, ARGV[1])
local f = redis.call("HMGET", KEYS[1], "state", "attempts")
if f[1] ~= "running" or f[2] ~= ARGV[2] then return 0 end
redis.call("HSET", KEYS[1], "state", "queued", "error", ARGV[3])
redis.call("ZADD", KEYS[4], ARGV[4], ARGV[1])
return append_event(KEYS[1], KEYS[2], ARGV[6], "q", head_of("queued", ARGV[1]),
  ',"attempt":' .. (tonumber(ARGV[2]) + 1) .. ',"reason":"retry","delay_ms":' .. ARGV[5] .. ',"error":' .. ARGV[3] .. "}")
