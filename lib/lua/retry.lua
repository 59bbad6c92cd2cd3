--[[
  Marks a task whose handler threw or timed out as waiting for its next attempt, and tells its
  watchers with a `queued` event carrying the next attempt's number, the delay (backoff with jitter)
  and the error. The caller then adds the id to the shard's delayed set (delay.lua) and drops it from
  its processing list (in that order: a crash in between leaves it for the reaper, never lost).
  Input:
    KEYS[1] task hash  KEYS[2] events list  KEYS[3] task channel
    ARGV[1] id  ARGV[2] attempt that failed  ARGV[3] error JSON  ARGV[4] delay (ms)
  The delay's end is kept as `due`, so enqueue.lua does not queue the task again before then.
  Output:
    seq of the `queued` event;  0 this attempt is no longer current (dropped)
]]
local f = redis.call("HMGET", KEYS[1], "state", "attempts", "inbox")
if f[1] ~= "running" or f[2] ~= ARGV[2] then return 0 end
redis.call("HSET", KEYS[1], "state", "queued", "error", ARGV[3], "due", now_ms() + tonumber(ARGV[4]))
return append_event(ARGV[1], "q", "queued",
  ',"attempt":' .. (tonumber(ARGV[2]) + 1) .. ',"reason":"retry","delay_ms":' .. ARGV[4] .. ',"error":' .. ARGV[3] .. "}", f[3])
