--[[
  A parked worker withdraws its credit (handing.lua) and wakes its own BLPOP with an empty entry "",
  which it ignores: nothing can be handed to it afterwards, and whatever was handed before reaches it
  first (LPOP side). Pushed even when no credit was left (used up by a hand-off, ended, or lost to a
  FLUSHALL or restart): the BLPOP must not sit out its timeout. A "" left over is dropped by the next
  take_start.lua.
  Input:
    KEYS[1] the shard's parked set  KEYS[2] the worker's hand-off list  ARGV[1] worker id
  Output:
    1 withdrawn;  0 it had no credit left
]]
local n = redis.call("ZREM", KEYS[1], ARGV[1])
redis.call("RPUSH", KEYS[2], "")
return n
