--[[
  Creates a task and queues it, or returns the task an idempotency key already names.
  Idempotent by id too, so a client retry after a lost reply never queues a task twice.
  Input:
    KEYS[1] task hash    KEYS[2] queue    KEYS[3] idempotency key (unused when ARGV[7] == "")
    KEYS[4] stats hash
    ARGV[1] id  ARGV[2] task name  ARGV[3] args JSON  ARGV[4] options JSON  ARGV[5] now (ms)
    ARGV[6] ttl (s)  ARGV[7] idempotency key or ""
  Output:
    {1, id} queued;  {0, existing id} the key or the id was seen before
]]
local id, ttl = ARGV[1], tonumber(ARGV[6])
if ARGV[7] ~= "" then
  local existing = redis.call("GET", KEYS[3])
  if existing then return {0, existing} end
end
if redis.call("EXISTS", KEYS[1]) == 1 then return {0, id} end
if ARGV[7] ~= "" then redis.call("SET", KEYS[3], id, "EX", ttl) end
redis.call("HSET", KEYS[1], "task", ARGV[2], "args", ARGV[3], "opts", ARGV[4], "state", "queued",
  "created", ARGV[5], "attempts", 0, "stalls", 0, "seq", 0, "key", ARGV[7])
redis.call("EXPIRE", KEYS[1], ttl)
redis.call("LPUSH", KEYS[2], id)
redis.call("HINCRBY", KEYS[4], "submitted:" .. ARGV[2], 1)
return {1, id}
