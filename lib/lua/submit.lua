--[[
  One Redis only: enqueue.lua and dispatch.lua in one script, for a new id (the task keys and a parked
  worker's keys are computed, which a cluster does not allow). The task is created, then queued or
  handed to a parked worker (handing.lua). An id that existed already (only a resend of this very submit
  can find one) is queued again while still queued: a duplicate entry, which starting skips.
  Input:
    KEYS[1] task hash  KEYS[2] queue shard
    ARGV[1..7] as enqueue.lua  ARGV[8] id  ARGV[9] parked set  ARGV[10..13] task, events, active and
    hand-off heads (see dispatch.lua)
  Output:
    as enqueue.lua
]]
local r = create_task(KEYS[1], ARGV)
if r[2] == "queued" then
  dispatch(ARGV[8], "LPUSH", {KEYS[2], ARGV[9], ARGV[10], ARGV[11], ARGV[12], ARGV[13]}, ARGV[4], tonumber(ARGV[5]))
end
return r
