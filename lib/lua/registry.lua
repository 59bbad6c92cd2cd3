--[[
  Reads the worker registry against Redis's clock: who beat within dead-after, and who has not (not
  reaped yet), newest first.
  Input:
    KEYS[1] workers zset
    ARGV[1] dead-after (ms)  ARGV[2] how many silent ones at most
  Output:
    {now, {id, last beat, ...} live, {id, last beat, ...} silent}
]]
local now = now_ms()
local cutoff = now - tonumber(ARGV[1])
return {
  now,
  redis.call("ZRANGEBYSCORE", KEYS[1], cutoff, "+inf", "WITHSCORES"),
  redis.call("ZREVRANGEBYSCORE", KEYS[1], "(" .. cutoff, "-inf", "WITHSCORES", "LIMIT", 0, tonumber(ARGV[2])),
}
