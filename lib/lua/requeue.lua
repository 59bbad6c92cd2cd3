--[[
  Hands one task found in a worker's processing list back (the task's half of a hand-back; the caller
  then pushes the id back on the queue shard when told to, and drops it from the processing list).
  A running task gets a `queued` event, unless it was cancelled (ends `cancelled`) or its worker was
  lost too often (ends `failed` code `exhausted`). An id that was taken but never started (still
  `queued`) just goes back. A task another worker now runs is left to that worker.
  Modes (ARGV[3]):
    lost      the worker died: counts a loss, and the attempt it used stays counted
    shutdown  the worker is stopping: the interrupted attempt is not counted
    orphan    a live worker hands back an id it holds but does not run (a start whose reply was lost
              while Redis restarted)
  Input:
    KEYS[1] task hash  KEYS[2] events list  KEYS[3] task channel
    ARGV[1] id  ARGV[2] worker id  ARGV[3] mode  ARGV[4] ttl (s)  ARGV[5] max losses
  Output:
    {"push", name} put it back on the queue;  {"cancelled"|"exhausted", name} it ended here;
    {"skip", name} nothing to do (final, gone, or another worker's)
]]
local id, wid, mode = ARGV[1], ARGV[2], ARGV[3]
local lost = mode == "lost"
local f = redis.call("HMGET", KEYS[1], "state", "stalls", "cancel", "attempts", "worker", "task", "inbox")
local name = f[6] or "?"
if f[1] == "queued" then return {"push", name} end
if f[1] ~= "running" or f[5] ~= wid then return {"skip", name} end
local stalls = tonumber(f[2] or "0") + (lost and 1 or 0)
local attempts = tonumber(f[4] or "0")
if f[3] == "1" then
  finish_task(id, "cancelled", "", tonumber(ARGV[4]), f[7])
  return {"cancelled", name}
end
if lost and stalls > tonumber(ARGV[5]) then
  finish_task(id, "failed",
    '{"code":"exhausted","message":"the worker running it was lost ' .. stalls .. ' times"}',
    tonumber(ARGV[4]), f[7])
  return {"exhausted", name}
end
if not lost and attempts > 0 then attempts = attempts - 1 end
redis.call("HSET", KEYS[1], "state", "queued", "stalls", stalls, "attempts", attempts)
local reason = lost and "worker_lost" or (mode == "shutdown" and "worker_shutdown" or "worker_restarted")
append_event(id, "q", "queued", ',"attempt":' .. (attempts + 1) .. ',"reason":"' .. reason .. '"}', f[7])
return {"push", name}
