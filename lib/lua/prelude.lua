--[[
  Prepended to every script that appends task events (see lib/scripts.ts), so there is one place
  that numbers events and one that writes a final state.
  An event entry is "<seq> <kind> <frame>": kind p = progress, q = other non-final, t = final; the
  frame is the exact /ws JSON. Entry n sits at index n-1 of the task's events list.
]]
local FINAL = { succeeded = true, failed = true, cancelled = true }
local FRAME_TYPE = { succeeded = "result", failed = "failed", cancelled = "cancelled" }

local function append_event(task_key, events_key, channel, kind, head, tail)
  local seq = redis.call("HINCRBY", task_key, "seq", 1)
  local entry = seq .. " " .. kind .. " " .. head .. seq .. tail
  redis.call("RPUSH", events_key, entry)
  -- The log lives as long as its task, whichever kind of event (progress, queued) starts it.
  if seq == 1 then redis.call("PEXPIRE", events_key, math.max(redis.call("PTTL", task_key), 1000)) end
  redis.call("PUBLISH", channel, entry)
  return seq
end

local function head_of(frame_type, id)
  return '{"type":"' .. frame_type .. '","id":"' .. id .. '","seq":'
end

-- state: succeeded (payload = result JSON), failed (payload = error JSON) or cancelled.
local function finish_task(prefix, id, state, payload, now, ttl, stats_key, recent_key)
  local tk = prefix .. ":task:{" .. id .. "}"
  local ek = prefix .. ":events:{" .. id .. "}"
  local name = redis.call("HGET", tk, "task") or "?"
  local tail = "}"
  if state == "succeeded" then
    tail = ',"result":' .. payload .. "}"
    redis.call("HSET", tk, "result", payload)
  elseif state == "failed" then
    tail = ',"error":' .. payload .. "}"
    redis.call("HSET", tk, "error", payload)
  end
  redis.call("HSET", tk, "state", state, "finished", now)
  local seq = append_event(tk, ek, prefix .. ":ch:{" .. id .. "}", "t", head_of(FRAME_TYPE[state], id), tail)
  redis.call("EXPIRE", tk, ttl)
  redis.call("EXPIRE", ek, ttl)
  redis.call("HINCRBY", stats_key, state .. ":" .. name, 1)
  redis.call("LPUSH", recent_key, id)
  redis.call("LTRIM", recent_key, 0, 199)
  return seq
end
