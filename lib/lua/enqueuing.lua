--[[
  Prepended to enqueue.lua and submit.lua: the one place that creates a task (its hash only). Idempotent
  by id, so a retry after a lost reply, or after a crash between creating and queueing, never creates it
  twice. Returns {1, "queued"} created, or {0, state} the id existed already (state: its current state,
  or "delayed" when it is queued but waiting out a retry backoff: it is in the delayed set, and must not
  be queued again, or it would run early).
  a: {task name, args JSON, options JSON, now (ms), ttl (s), idempotency key or "", the submitting
  server's inbox channel or "" (see prelude.lua)}
]]
local function create_task(task_key, a)
  local f = redis.call("HMGET", task_key, "state", "due")
  if f[1] == "queued" and f[2] and tonumber(f[2]) > tonumber(a[4]) then return {0, "delayed"} end
  if f[1] then return {0, f[1]} end
  redis.call("HSET", task_key, "task", a[1], "args", a[2], "opts", a[3], "state", "queued",
    "created", a[4], "attempts", 0, "stalls", 0, "seq", 0, "key", a[6], "inbox", a[7])
  redis.call("EXPIRE", task_key, tonumber(a[5]))
  return {1, "queued"}
end
