--[[
  Writes a task's final state once: the first attempt to finish wins; a late or duplicate one is
  dropped. The caller then drops the id from its processing list and updates the fleet counters.
  Input:
    KEYS[1] task hash  KEYS[2] events list  KEYS[3] task channel
    ARGV[1] id  ARGV[2] state (succeeded|failed|cancelled)  ARGV[3] result or error JSON
    ARGV[4] ttl (s)
  Output:
    seq of the final event;  -1 task unknown or expired;  -2 already final (dropped)
]]
local f = redis.call("HMGET", KEYS[1], "state", "inbox")
if not f[1] then return -1 end
if FINAL[f[1]] then return -2 end
return finish_task(ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), f[2])
