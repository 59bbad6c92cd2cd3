--[[
  Moves up to ARGV[1] task ids from a queue shard to this worker's processing list for that shard, after
  dropping from that list the ids ARGV[2..] whose final state (or retry) is already written: the removal
  rides on the next take instead of costing a command per task. The ids are only taken, not started:
  the worker starts each with start.lua (the task's own slot).
  Input:
    KEYS[1] queue shard  KEYS[2] this worker's processing list for that shard
    ARGV[1] max ids to take (0: only drop)  ARGV[2..] ids to drop from the processing list
  Output:
    { id, ... } (oldest first)
]]
for i = 2, #ARGV do redis.call("LREM", KEYS[2], -1, ARGV[i]) end
local out = {}
for _ = 1, tonumber(ARGV[1]) do
  local id = redis.call("LMOVE", KEYS[1], KEYS[2], "RIGHT", "LEFT")
  if not id then break end
  out[#out + 1] = id
end
return out
