--[[
  Cancels a task: a queued one ends `cancelled` at once (its queue entry is skipped when taken); a
  running one is flagged (the caller then tells its worker over the control channel).
  Input:
    KEYS[1] task hash  KEYS[2] events list  KEYS[3] task channel
    ARGV[1] id  ARGV[2] ttl (s)
  Output:
    {outcome, task name}: outcome "not_found" | "cancelled" (was queued) | "cancelling" (was running)
    | the final state it already had
]]
local f = redis.call("HMGET", KEYS[1], "state", "task", "inbox")
local state, name = f[1], f[2] or "?"
if not state then return {"not_found", ""} end
if state == "queued" then
  finish_task(ARGV[1], "cancelled", "", tonumber(ARGV[2]), f[3])
  return {"cancelled", name}
end
if state == "running" then
  redis.call("HSET", KEYS[1], "cancel", "1")
  return {"cancelling", name}
end
return {state, name}
