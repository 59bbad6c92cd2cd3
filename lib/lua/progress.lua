--[[
  Appends a progress event to a running task's log and publishes it. Dropped when the attempt is no
  longer the task's current running one (a late or duplicate worker), when the log is full, or when
  this report was stored already: a client that resends a command after a dropped connection must not
  append the same progress twice.
  Input:
    KEYS[1] task hash  KEYS[2] events list  KEYS[3] task channel
    ARGV[1] id  ARGV[2] attempt  ARGV[3] data JSON  ARGV[4] max events per task
    ARGV[5] this report's number within the attempt (1, 2, ...; starting.lua resets the count)
  Output:
    seq (> 0) appended;  0 dropped;  -1 cancellation was requested (the worker should abort)
]]
local f = redis.call("HMGET", KEYS[1], "state", "attempts", "seq", "cancel", "inbox", "pn")
if f[4] == "1" then return -1 end
if f[1] ~= "running" or f[2] ~= ARGV[2] then return 0 end
if tonumber(f[6] or "0") >= tonumber(ARGV[5]) then return 0 end
-- Keep two slots free so a requeue and the final event always fit.
if tonumber(f[3] or "0") >= tonumber(ARGV[4]) - 2 then return 0 end
redis.call("HSET", KEYS[1], "progress", ARGV[3], "pn", ARGV[5])
return append_event(ARGV[1], "p", "progress", ',"data":' .. ARGV[3] .. "}", f[5])
