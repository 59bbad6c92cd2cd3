--[[
  Starts a task a worker took off a queue: marks it running under this worker and counts the attempt.
  Refused when the task is no longer queued (cancelled, expired, finished, or a duplicate queue entry
  another worker already started): the caller then drops the id from its processing list.
  Starting renews the TTL, so a task that waited long in the queue still has RESULT_TTL_S to run.
  Input:
    KEYS[1] task hash  KEYS[2] events list
    ARGV[1] now (ms)  ARGV[2] worker id  ARGV[3] ttl (s)
  Output:
    {task, args, opts, attempt, created} started;  false not startable
]]
local f = redis.call("HMGET", KEYS[1], "state", "task", "args", "opts", "created", "attempts", "seq")
if f[1] ~= "queued" then return false end
local attempt = tonumber(f[6] or "0") + 1
redis.call("HSET", KEYS[1], "state", "running", "started", ARGV[1], "worker", ARGV[2], "attempts", attempt)
redis.call("EXPIRE", KEYS[1], tonumber(ARGV[3]))
-- No event yet (a first run): no log to renew.
if tonumber(f[7] or "0") > 0 then redis.call("EXPIRE", KEYS[2], tonumber(ARGV[3])) end
return {f[2], f[3], f[4], attempt, f[5]}
