--[[
  Prepended to every script that stores or compares a time: Redis's clock is the one clock of a fleet,
  so hosts whose clocks disagree still agree on when a task was created, started or finished, when a
  retry is due, and when a worker was last heard from.
]]
local function now_ms()
  local t = redis.call("TIME")
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
