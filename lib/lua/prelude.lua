--[[
  Prepended to every script that appends task events (see lib/scripts.ts), so there is one place
  that numbers events and one that writes a final state. Every key and the shard channel here are
  the task's own (KEYS[1] task hash, KEYS[2] events list, KEYS[3] channel): one slot.
  An event entry is "<seq> <kind> <frame>": kind p = progress, q = other non-final, t = final; the
  frame is the exact /ws JSON. Entry n sits at index n-1 of the task's events list.
]]
local FINAL = { succeeded = true, failed = true, cancelled = true }
local FRAME_TYPE = { succeeded = "result", failed = "failed", cancelled = "cancelled" }

local function append_event(kind, head, tail)
  local seq = redis.call("HINCRBY", KEYS[1], "seq", 1)
  local entry = seq .. " " .. kind .. " " .. head .. seq .. tail
  redis.call("RPUSH", KEYS[2], entry)
  -- The log lives as long as its task, whichever kind of event (progress, queued) starts it.
  if seq == 1 then redis.call("PEXPIRE", KEYS[2], math.max(redis.call("PTTL", KEYS[1]), 1000)) end
  redis.call("SPUBLISH", KEYS[3], entry)
  return seq
end

local function head_of(frame_type, id)
  return '{"type":"' .. frame_type .. '","id":"' .. id .. '","seq":'
end

-- state: succeeded (payload = result JSON), failed (payload = error JSON) or cancelled.
local function finish_task(id, state, payload, now, ttl)
  local tail = "}"
  if state == "succeeded" then
    tail = ',"result":' .. payload .. "}"
    redis.call("HSET", KEYS[1], "result", payload)
  elseif state == "failed" then
    tail = ',"error":' .. payload .. "}"
    redis.call("HSET", KEYS[1], "error", payload)
  end
  redis.call("HSET", KEYS[1], "state", state, "finished", now)
  local seq = append_event("t", head_of(FRAME_TYPE[state], id), tail)
  redis.call("EXPIRE", KEYS[1], ttl)
  redis.call("EXPIRE", KEYS[2], ttl)
  return seq
end
