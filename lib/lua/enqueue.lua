--[[
  Creates a task. Idempotent by id, so a retry after a lost reply, or after a crash between the two steps,
  never creates it twice. With KEYS[2] (one Redis only: the queue shard is in another slot) it also queues
  the id, in the same script: one command per submit instead of a pipeline of two. Without it the caller
  pushes the id onto a queue shard next (a cluster).
  Input:
    KEYS[1] task hash  KEYS[2] (optional) the queue shard to push the id onto
    ARGV[1] task name  ARGV[2] args JSON  ARGV[3] options JSON  ARGV[4] ttl (s)
    ARGV[5] idempotency key or ""  ARGV[6] the submitting server's inbox channel or "" (see prelude.lua)
    ARGV[7] the task id (with KEYS[2])
  Output:
    {1, "queued"} created;  {0, state} the id existed already (state: its current state, or "delayed"
    when it is queued but waiting out a retry backoff: it is in the delayed set, and must not be queued
    again, or it would run early). With KEYS[2], an existing task that is `queued` is pushed again: that
    repairs a submit that stopped between the two steps of the cluster path, and a duplicate queue
    entry is skipped when started (starting.lua).
]]
local now = now_ms()
local f = redis.call("HMGET", KEYS[1], "state", "due")
if f[1] == "queued" and f[2] and tonumber(f[2]) > now then return {0, "delayed"} end
if f[1] then
  if f[1] == "queued" and KEYS[2] then redis.call("LPUSH", KEYS[2], ARGV[7]) end
  return {0, f[1]}
end
-- A count that is 0 or a name that is "" is left out (every reader takes it so): a small hash costs Redis
-- less to build, and less to keep for RESULT_TTL_S.
local fields = {"task", ARGV[1], "args", ARGV[2], "opts", ARGV[3], "state", "queued", "created", now}
if ARGV[5] ~= "" then fields[#fields + 1], fields[#fields + 2] = "key", ARGV[5] end
if ARGV[6] ~= "" then fields[#fields + 1], fields[#fields + 2] = "inbox", ARGV[6] end
redis.call("HSET", KEYS[1], unpack(fields))
redis.call("EXPIRE", KEYS[1], tonumber(ARGV[4]))
if KEYS[2] then redis.call("LPUSH", KEYS[2], ARGV[7]) end
return {1, "queued"}
