--[[
  Puts a task that will be retried into its shard's delayed set, due after its backoff (see retry.lua).
  Input:
    KEYS[1] delayed zset
    ARGV[1] id  ARGV[2] delay (ms)
  Output:
    when it is due (ms, Redis's clock)
]]
local due = now_ms() + tonumber(ARGV[2])
redis.call("ZADD", KEYS[1], due, ARGV[1])
return due
