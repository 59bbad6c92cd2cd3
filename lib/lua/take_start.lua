--[[
  One Redis only (not a cluster): take.lua and start.lua in one round trip. Moves up to ARGV[1] ids from
  a queue shard to this worker's processing list and starts each (starting.lua); an id that cannot start
  leaves the list at once. The task keys are not declared (they are only known once an id is popped),
  which a single Redis allows and a cluster does not: there the worker takes, then starts.
  Input:
    KEYS[1] queue shard  KEYS[2] this worker's processing list for that shard
    ARGV[1] max ids to take  ARGV[2] worker id  ARGV[3] ttl (s)
    ARGV[4] the task hash key of id "" and ARGV[5] the events key of id "" (both end "{}": the id goes
    between the braces; see lib/keys.ts)  ARGV[6..] ids to drop from the processing list (see take.lua)
  Output:
    {moved, ours, id, task, args, opts, attempt, id, ...}: how many ids were taken, how many of them this
    worker had started already (left in the list for its audit: see starting.lua), then each started one
]]
for i = 6, #ARGV do redis.call("LREM", KEYS[2], -1, ARGV[i]) end
local task_head, events_head = string.sub(ARGV[4], 1, -2), string.sub(ARGV[5], 1, -2)
local ttl, now = tonumber(ARGV[3]), now_ms()
local out = {0, 0}
for _ = 1, tonumber(ARGV[1]) do
  local id = redis.call("LMOVE", KEYS[1], KEYS[2], "RIGHT", "LEFT")
  if not id then break end
  out[1] = out[1] + 1
  local s = start_task(task_head .. id .. "}", events_head .. id .. "}", now, ARGV[2], ttl)
  if s == "ours" then
    out[2] = out[2] + 1
  elseif s then
    out[#out + 1] = id
    for j = 1, 4 do out[#out + 1] = s[j] end
  else
    redis.call("LREM", KEYS[2], -1, id)
  end
end
return out
