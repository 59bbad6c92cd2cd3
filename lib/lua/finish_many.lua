--[[
  One Redis only (the task keys are not declared, as in take_start.lua): finish.lua for several tasks in
  one call, so outcomes that end in one turn cost Redis one command instead of one each.
  Input:
    ARGV[1] ttl (s)  ARGV[2..4] the task hash, events and channel keys of id "" (each ends "{}": the id
    goes between the braces; see lib/keys.ts)  then per task: id, state, result or error JSON
  Output:
    per task, as finish.lua: seq of the final event, -1 unknown or expired, -2 already final
]]
local ttl = tonumber(ARGV[1])
local heads = { string.sub(ARGV[2], 1, -2), string.sub(ARGV[3], 1, -2), string.sub(ARGV[4], 1, -2) }
local out = {}
for i = 5, #ARGV, 3 do
  local id = ARGV[i]
  -- The prelude's functions work on KEYS[1..3]: point them at this task's keys.
  for j = 1, 3 do KEYS[j] = heads[j] .. id .. "}" end
  local f = redis.call("HMGET", KEYS[1], "state", "inbox")
  if not f[1] then out[#out + 1] = -1
  elseif FINAL[f[1]] then out[#out + 1] = -2
  else out[#out + 1] = finish_task(id, ARGV[i + 1], ARGV[i + 2], ttl, f[2]) end
end
return out
