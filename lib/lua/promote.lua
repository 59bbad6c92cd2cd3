--[[
  Moves retries whose backoff has elapsed from a shard's delayed set to the front of its queue, or hands
  them to parked workers (handing.lua).
  Input:
    KEYS[1] delayed zset  KEYS[2] queue (same shard)
    ARGV[1] now (ms)  ARGV[2] max to move  ARGV[3] ttl (s)  ARGV[4..8] parked set ("" on a cluster),
    task, events, active and hand-off heads (see dispatch.lua)
  Output:
    number moved
]]
local ids = redis.call("ZRANGEBYSCORE", KEYS[1], "-inf", ARGV[1], "LIMIT", 0, tonumber(ARGV[2]))
local q = {KEYS[2], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]}
for _, id in ipairs(ids) do
  redis.call("ZREM", KEYS[1], id)
  dispatch(id, "RPUSH", q, ARGV[1], tonumber(ARGV[3]))
end
return #ids
