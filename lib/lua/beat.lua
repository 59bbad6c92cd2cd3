--[[
  A worker's heartbeat: its registry score is the time of this beat, and its key (what it runs) lives for
  dead-after. Both on Redis's clock, so a host whose clock is off neither hides a dead worker nor
  buries a live one.
  Input:
    KEYS[1] workers zset  KEYS[2] this worker's key (same slot)
    ARGV[1] worker id  ARGV[2] info JSON  ARGV[3] dead-after (ms)
  Output:
    the beat's time (ms)
]]
local now = now_ms()
redis.call("ZADD", KEYS[1], now, ARGV[1])
redis.call("SET", KEYS[2], ARGV[2], "PX", tonumber(ARGV[3]))
return now
