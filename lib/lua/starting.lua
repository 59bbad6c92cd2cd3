--[[
  Prepended to start.lua and take_start.lua: the one place that starts a task. Marks it running under
  this worker and counts the attempt; refused when the task is no longer queued (cancelled, expired,
  finished, or a duplicate queue entry another worker already started). Starting renews the TTL, so a
  task that waited long in the queue still has RESULT_TTL_S to run.
  Returns {task, args, opts, attempt, created} started, false refused, or "ours" when this worker
  already started it: the same start sent again (ioredis resends a command whose reply a dropped
  connection lost), or a duplicate queue entry. The caller keeps "ours" in its processing list, where
  its audit hands it back unless a handler here runs it: dropping it would leave a task `running` that
  nothing runs and no reaper sees.
]]
local function start_task(task_key, events_key, now, wid, ttl)
  local f = redis.call("HMGET", task_key, "state", "task", "args", "opts", "created", "attempts", "seq", "worker")
  if f[1] == "running" and f[8] == wid then return "ours" end
  if f[1] ~= "queued" then return false end
  local attempt = tonumber(f[6] or "0") + 1
  redis.call("HSET", task_key, "state", "running", "started", now, "worker", wid, "attempts", attempt, "pn", 0)
  redis.call("EXPIRE", task_key, ttl)
  -- No event yet (a first run): no log to renew.
  if tonumber(f[7] or "0") > 0 then redis.call("EXPIRE", events_key, ttl) end
  return {f[2], f[3], f[4], attempt, f[5]}
end
