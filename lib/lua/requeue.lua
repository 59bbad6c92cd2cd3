--[[
  Hands a dead worker's tasks back: each running task in its processing list goes back to the queue
  (front of the line) with a `queued` event, unless it was cancelled (ends `cancelled`) or has been
  lost too often (ends `failed` with code `exhausted` and goes to the dead-letter list).
  Input:
    KEYS[1] dead worker's processing list  KEYS[2] queue  KEYS[3] workers zset  KEYS[4] stats
    KEYS[5] recent  KEYS[6] dead-letter list  KEYS[7] dead worker's heartbeat key
    ARGV[1] key prefix  ARGV[2] worker id  ARGV[3] now (ms)  ARGV[4] ttl (s)  ARGV[5] max losses
    ARGV[6] "lost" (the worker died: counts a loss) or "shutdown" (it handed its tasks back)
  Output:
    number of tasks put back on the queue
]]
local prefix = ARGV[1]
local lost = ARGV[6] == "lost"
local requeued = 0
for _, id in ipairs(redis.call("LRANGE", KEYS[1], 0, -1)) do
  local tk = prefix .. ":task:{" .. id .. "}"
  local f = redis.call("HMGET", tk, "state", "stalls", "cancel", "attempts")
  if f[1] == "running" then
    local stalls = tonumber(f[2] or "0") + (lost and 1 or 0)
    if f[3] == "1" then
      finish_task(prefix, id, "cancelled", "", ARGV[3], tonumber(ARGV[4]), KEYS[4], KEYS[5])
    elseif lost and stalls > tonumber(ARGV[5]) then
      finish_task(prefix, id, "failed",
        '{"code":"exhausted","message":"the worker running it was lost ' .. (stalls - 1) .. ' times"}',
        ARGV[3], tonumber(ARGV[4]), KEYS[4], KEYS[5])
      redis.call("LPUSH", KEYS[6], id)
      redis.call("LTRIM", KEYS[6], 0, 9999)
    else
      redis.call("HSET", tk, "state", "queued", "stalls", stalls)
      redis.call("RPUSH", KEYS[2], id)
      append_event(tk, prefix .. ":events:{" .. id .. "}", prefix .. ":ch:{" .. id .. "}", "q", head_of("queued", id),
        ',"attempt":' .. (tonumber(f[4] or "0") + 1) .. ',"reason":"worker_' .. ARGV[6] .. '"}')
      requeued = requeued + 1
    end
  end
end
redis.call("DEL", KEYS[1], KEYS[7])
redis.call("ZREM", KEYS[3], ARGV[2])
return requeued
