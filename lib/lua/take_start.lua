--[[
  One Redis only (not a cluster): take.lua and start.lua in one round trip, and parking (handing.lua).
  First collects what was handed to this worker (its hand-off list) and withdraws its parked credit;
  then moves up to ARGV[1] minus that many ids from a queue shard to this worker's processing list and
  starts each (starting.lua); an id that cannot start leaves the list at once. When it got nothing and
  ARGV[9] > 0, the worker parks: the next id queued on the shard is started and handed to it.
  The task keys are not declared (they are only known once an id is popped), which a single Redis
  allows and a cluster does not: there the worker takes, then starts.
  Input:
    KEYS[1] queue shard  KEYS[2] this worker's processing list for that shard
    ARGV[1] max ids to take  ARGV[2] now (ms)  ARGV[3] worker id  ARGV[4] ttl (s)
    ARGV[5] the task hash key of id "" and ARGV[6] the events key of id "" (both end "{}": the id goes
    between the braces; see lib/keys.ts)  ARGV[7] the shard's parked set  ARGV[8] this worker's hand-off
    list for the shard  ARGV[9] how long the worker will wait, parked (ms; 0: do not park)
    ARGV[10..] ids to drop from the processing list (see take.lua)
  Output:
    {moved, parked (0|1), entry, ...}: how many ids were taken from the queue, whether it parked, then a
    hand-off entry (handing.lua) for each started task, handed ones first
]]
for i = 10, #ARGV do redis.call("LREM", KEYS[2], -1, ARGV[i]) end
local task_head, events_head = string.sub(ARGV[5], 1, -2), string.sub(ARGV[6], 1, -2)
local ttl = tonumber(ARGV[4])
local out = {0, 0}
local handed = redis.call("LRANGE", ARGV[8], 0, -1)
for _, e in ipairs(handed) do
  if e ~= "" then out[#out + 1] = e end -- "": unpark.lua's wake-up
end
if #handed > 0 then redis.call("DEL", ARGV[8]) end
for _ = #out - 2 + 1, tonumber(ARGV[1]) do
  local id = redis.call("LMOVE", KEYS[1], KEYS[2], "RIGHT", "LEFT")
  if not id then break end
  out[1] = out[1] + 1
  local s = start_task(task_head .. id .. "}", events_head .. id .. "}", ARGV[2], ARGV[3], ttl)
  if s then
    out[#out + 1] = handoff_entry(id, s)
  else
    redis.call("LREM", KEYS[2], -1, id)
  end
end
-- Parking (again) replaces a credit left from before; anything else withdraws it.
if #out == 2 and tonumber(ARGV[9]) > 0 then
  redis.call("ZADD", ARGV[7], redis_ms() + tonumber(ARGV[9]), ARGV[3])
  out[2] = 1
else
  redis.call("ZREM", ARGV[7], ARGV[3])
end
return out
