--[[
  Writes a task's final state once: the first attempt to finish wins; a late or duplicate finish only
  leaves the processing list. Exhausted failures also go on the dead-letter list.
  Input:
    KEYS[1] task hash  KEYS[2] this worker's processing list  KEYS[3] stats  KEYS[4] recent  KEYS[5] dead
    ARGV[1] key prefix  ARGV[2] id  ARGV[3] state (succeeded|failed|cancelled)  ARGV[4] result or error JSON
    ARGV[5] now (ms)  ARGV[6] ttl (s)  ARGV[7] "1" when the failure is `exhausted`
  Output:
    seq of the final event;  -1 task unknown or expired;  -2 already final (dropped)
]]
redis.call("LREM", KEYS[2], -1, ARGV[2])
local state = redis.call("HGET", KEYS[1], "state")
if not state then return -1 end
if FINAL[state] then return -2 end
local seq = finish_task(ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6]), KEYS[3], KEYS[4])
if ARGV[7] == "1" then
  redis.call("LPUSH", KEYS[5], ARGV[2])
  redis.call("LTRIM", KEYS[5], 0, 9999)
end
return seq
