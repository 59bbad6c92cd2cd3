--[[
  Moves retries whose backoff has elapsed from a shard's delayed set to the front of its queue.
  Input:
    KEYS[1] delayed zset  KEYS[2] queue (same shard)
    ARGV[1] max to move
  Output:
    number moved
]]
local ids = redis.call("ZRANGEBYSCORE", KEYS[1], "-inf", now_ms(), "LIMIT", 0, tonumber(ARGV[1]))
for _, id in ipairs(ids) do
  redis.call("ZREM", KEYS[1], id)
  redis.call("RPUSH", KEYS[2], id)
end
return #ids
