--[[
  Moves up to ARGV[2] task ids from the queue to this worker's processing list and marks them running.
  ARGV[3], when not "", is an id BLMOVE already moved. Ids whose task is no longer queued (cancelled,
  expired, or finished by an earlier attempt) are dropped from the processing list and skipped.
  Starting a task renews its TTL, so a task that waited long in the queue still has RESULT_TTL_S to run.
  Input:
    KEYS[1] queue    KEYS[2] this worker's processing list
    ARGV[1] key prefix  ARGV[2] max ids to take  ARGV[3] id already moved or ""  ARGV[4] now (ms)
    ARGV[5] worker id  ARGV[6] ttl (s)
  Output:
    { {id, task, args, opts, attempt, created}, ... }
]]
local prefix, now, wid, ttl = ARGV[1], ARGV[4], ARGV[5], tonumber(ARGV[6])
local out = {}
local function start(id)
  local tk = prefix .. ":task:{" .. id .. "}"
  local f = redis.call("HMGET", tk, "state", "task", "args", "opts", "created")
  if f[1] ~= "queued" then
    redis.call("LREM", KEYS[2], -1, id)
    return
  end
  local attempt = redis.call("HINCRBY", tk, "attempts", 1)
  redis.call("HSET", tk, "state", "running", "started", now, "worker", wid)
  redis.call("EXPIRE", tk, ttl)
  redis.call("EXPIRE", prefix .. ":events:{" .. id .. "}", ttl)
  out[#out + 1] = {id, f[2], f[3], f[4], attempt, f[5]}
end
local budget = tonumber(ARGV[2])
if ARGV[3] ~= "" then
  start(ARGV[3])
  budget = budget - 1
end
for _ = 1, budget do
  local id = redis.call("LMOVE", KEYS[1], KEYS[2], "RIGHT", "LEFT")
  if not id then break end
  start(id)
end
return out
