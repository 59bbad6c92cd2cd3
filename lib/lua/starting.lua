--[[
  Prepended to start.lua and take_start.lua: the one place that starts a task. Marks it running under
  this worker and counts the attempt; refused when the task is no longer queued (cancelled, expired,
  finished, or a duplicate queue entry another worker already started). Starting renews the TTL, so a
  task that waited long in the queue still has RESULT_TTL_S to run.
  Returns {task, args, opts, attempt, created} started, or false.
]]
local function start_task(task_key, events_key, now, wid, ttl)
  local f = redis.call("HMGET", task_key, "state", "task", "args", "opts", "created", "attempts", "seq")
  if f[1] ~= "queued" then return false end
  local attempt = tonumber(f[6] or "0") + 1
  redis.call("HSET", task_key, "state", "running", "started", now, "worker", wid, "attempts", attempt, "pn", 0)
  redis.call("EXPIRE", task_key, ttl)
  -- No event yet (a first run): no log to renew.
  if tonumber(f[7] or "0") > 0 then redis.call("EXPIRE", events_key, ttl) end
  return {f[2], f[3], f[4], attempt, f[5]}
end
