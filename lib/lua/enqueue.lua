--[[
  Creates a task (its hash only; the caller pushes the id onto a queue shard next). Idempotent by id,
  so a retry after a lost reply, or after a crash between the two steps, never creates it twice.
  Input:
    KEYS[1] task hash
    ARGV[1] task name  ARGV[2] args JSON  ARGV[3] options JSON  ARGV[4] now (ms)  ARGV[5] ttl (s)
    ARGV[6] idempotency key or ""  ARGV[7] the submitting server's inbox channel or "" (see prelude.lua)
  Output:
    {1, "queued"} created;  {0, state} the id existed already (state: its current state)
]]
local state = redis.call("HGET", KEYS[1], "state")
if state then return {0, state} end
redis.call("HSET", KEYS[1], "task", ARGV[1], "args", ARGV[2], "opts", ARGV[3], "state", "queued",
  "created", ARGV[4], "attempts", 0, "stalls", 0, "seq", 0, "key", ARGV[6],
  "inbox", ARGV[7])
redis.call("EXPIRE", KEYS[1], tonumber(ARGV[5]))
return {1, "queued"}
