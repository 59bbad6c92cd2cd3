--[[
  Cancels a task: a queued one ends `cancelled` at once (the queue entry is skipped when claimed); a
  running one is flagged and its worker told over the control channel.
  Input:
    KEYS[1] task hash  KEYS[2] stats  KEYS[3] recent
    ARGV[1] key prefix  ARGV[2] id  ARGV[3] now (ms)  ARGV[4] ttl (s)  ARGV[5] control channel
  Output:
    "not_found" | "cancelled" (was queued) | "cancelling" (was running) | the final state it already had
]]
local state = redis.call("HGET", KEYS[1], "state")
if not state then return "not_found" end
if state == "queued" then
  finish_task(ARGV[1], ARGV[2], "cancelled", "", ARGV[3], tonumber(ARGV[4]), KEYS[2], KEYS[3])
  return "cancelled"
end
if state == "running" then
  redis.call("HSET", KEYS[1], "cancel", "1")
  redis.call("PUBLISH", ARGV[5], "cancel " .. ARGV[2])
  return "cancelling"
end
return state
