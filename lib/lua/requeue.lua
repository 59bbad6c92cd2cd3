--[[
  Hands the tasks in a worker's processing list back to the queue (front of the line). A running task
  gets a `queued` event, unless it was cancelled (ends `cancelled`) or its worker was lost too often
  (ends `failed` code `exhausted` and goes to the dead-letter list). An id that was moved but never
  claimed (still `queued`) just goes back. A task another worker now runs is left to that worker.
  Modes (ARGV[6]):
    lost      the worker died: only if its heartbeat key has expired; counts a loss, and the attempt
              it used stays counted
    shutdown  the worker is stopping: the interrupted attempt is not counted
    orphan    a live worker hands back ids it holds but does not run (a claim whose reply was lost
              while Redis restarted); ARGV[7..] are the ids it does run, left alone
  Input:
    KEYS[1] processing list  KEYS[2] queue  KEYS[3] workers zset  KEYS[4] stats  KEYS[5] recent
    KEYS[6] dead-letter list  KEYS[7] the worker's heartbeat key
    ARGV[1] key prefix  ARGV[2] worker id  ARGV[3] now (ms)  ARGV[4] ttl (s)  ARGV[5] max losses
    ARGV[6] mode  ARGV[7..] (orphan) ids to leave alone
  Output:
    number of tasks put back on the queue;  -1 (lost) the heartbeat is still alive: nothing done
]]
local prefix, wid, mode = ARGV[1], ARGV[2], ARGV[6]
local lost = mode == "lost"
if lost and redis.call("EXISTS", KEYS[7]) == 1 then return -1 end
local keep = {}
for i = 7, #ARGV do keep[ARGV[i]] = true end
local requeued = 0
for _, id in ipairs(redis.call("LRANGE", KEYS[1], 0, -1)) do
  if not keep[id] then
    if mode == "orphan" then redis.call("LREM", KEYS[1], 0, id) end
    local tk = prefix .. ":task:{" .. id .. "}"
    local f = redis.call("HMGET", tk, "state", "stalls", "cancel", "attempts", "worker")
    if f[1] == "queued" then
      redis.call("RPUSH", KEYS[2], id)
      requeued = requeued + 1
    elseif f[1] == "running" and f[5] == wid then
      local stalls = tonumber(f[2] or "0") + (lost and 1 or 0)
      local attempts = tonumber(f[4] or "0")
      if f[3] == "1" then
        finish_task(prefix, id, "cancelled", "", ARGV[3], tonumber(ARGV[4]), KEYS[4], KEYS[5])
      elseif lost and stalls > tonumber(ARGV[5]) then
        finish_task(prefix, id, "failed",
          '{"code":"exhausted","message":"the worker running it was lost ' .. (stalls - 1) .. ' times"}',
          ARGV[3], tonumber(ARGV[4]), KEYS[4], KEYS[5])
        redis.call("LPUSH", KEYS[6], id)
        redis.call("LTRIM", KEYS[6], 0, 9999)
      else
        if not lost and attempts > 0 then attempts = attempts - 1 end
        redis.call("HSET", tk, "state", "queued", "stalls", stalls, "attempts", attempts)
        redis.call("RPUSH", KEYS[2], id)
        local reason = lost and "worker_lost" or (mode == "shutdown" and "worker_shutdown" or "worker_restarted")
        append_event(tk, prefix .. ":events:{" .. id .. "}", prefix .. ":ch:{" .. id .. "}", "q", head_of("queued", id),
          ',"attempt":' .. (attempts + 1) .. ',"reason":"' .. reason .. '"}')
        requeued = requeued + 1
      end
    end
  end
end
if mode ~= "orphan" then
  redis.call("DEL", KEYS[1], KEYS[7])
  redis.call("ZREM", KEYS[3], wid)
end
return requeued
