--[[
  Prepended to every script that appends task events (see lib/scripts.ts), so there is one place
  that numbers events and one that writes a final state. Every key and the shard channel here are
  the task's own (KEYS[1] task hash, KEYS[2] events list, KEYS[3] channel): one slot.
  An event entry is "<seq> <kind> <frame>": kind p = progress, q = other non-final, t = final; the
  frame is the exact /ws JSON. Entry n sits at index n-1 of the task's events list.
  A task submitted through a server with an inbox (one Redis, not a cluster: see enqueue.lua) has the
  inbox channel in its hash; each event also goes there as "<id> <entry>" (PUBLISH: not a key).
]]
local FINAL = { succeeded = true, failed = true, cancelled = true }
local FRAME_TYPE = { succeeded = "result", failed = "failed", cancelled = "cancelled" }

-- Appends event {"type":<frame_type>,"id":<id>,"seq":<next seq><tail> and publishes it. inbox: the
-- task's "inbox" field (each caller reads it with its own HMGET). ttl (s): the log's TTL when the caller
-- sets one now; without it the log lives as long as its task, whichever event (progress, queued) starts it.
local function append_event(id, kind, frame_type, tail, inbox, ttl)
  local seq = redis.call("HINCRBY", KEYS[1], "seq", 1)
  local entry = seq .. " " .. kind .. ' {"type":"' .. frame_type .. '","id":"' .. id .. '","seq":' .. seq .. tail
  redis.call("RPUSH", KEYS[2], entry)
  if ttl then redis.call("EXPIRE", KEYS[2], ttl)
  elseif seq == 1 then redis.call("PEXPIRE", KEYS[2], math.max(redis.call("PTTL", KEYS[1]), 1000)) end
  redis.call("SPUBLISH", KEYS[3], entry)
  if inbox and inbox ~= "" then redis.call("PUBLISH", inbox, id .. " " .. entry) end
  return seq
end

-- state: succeeded (payload = result JSON), failed (payload = error JSON) or cancelled. A result is kept
-- once, in the final event, where GET /tasks/<id> reads it: a second copy in the hash doubled what a large
-- result costs Redis, and made the hash of a task with small args a hashtable (values over 64 bytes).
local function finish_task(id, state, payload, ttl, inbox)
  local now = now_ms()
  local tail = "}"
  if state == "succeeded" then
    tail = ',"result":' .. payload .. "}"
    redis.call("HSET", KEYS[1], "state", state, "finished", now)
  elseif state == "failed" then
    tail = ',"error":' .. payload .. "}"
    redis.call("HSET", KEYS[1], "state", state, "finished", now, "error", payload)
  else
    redis.call("HSET", KEYS[1], "state", state, "finished", now)
  end
  local seq = append_event(id, "t", FRAME_TYPE[state], tail, inbox, ttl)
  redis.call("EXPIRE", KEYS[1], ttl)
  return seq
end
