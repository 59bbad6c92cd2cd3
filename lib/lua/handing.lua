--[[
  Prepended, after starting.lua, to the scripts that queue an id (dispatch.lua, promote.lua) and to
  take_start.lua: the one place that hands a task to a parked worker. One Redis only: a worker's keys
  are computed from its id, which a cluster does not allow (there `parked` is "" and ids are queued).
  A worker with a free run slot and an empty queue parks: it adds itself to the shard's parked set,
  scored by when its wait ends (Redis's clock, ms), and blocks on its hand-off list. An id queued
  meanwhile is started for the worker that parked first, put in its processing list and its hand-off
  list, and its credit is used up: the worker gets the started task in the reply it was waiting for,
  instead of being woken to take it, then starting it in another round trip.
  A hand-off entry is "<id>\n<task>\n<attempt>\n<options JSON>\n<args JSON>" (JSON.stringify output has
  no raw newline; args go last anyway).
]]
local function redis_ms()
  local t = redis.call("TIME")
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function handoff_entry(id, s)
  return id .. "\n" .. s[1] .. "\n" .. s[4] .. "\n" .. s[3] .. "\n" .. s[2]
end

-- q: {queue, parked (or ""), task head, events head, active head, handoff head}; a head is the key of
-- id (or worker) "" without its closing brace (task, events) or with the worker id still to append.
-- push: LPUSH (a new id: the back of the queue) or RPUSH (the front: promoted retries, hand-backs).
-- Returns the worker it went to, or false (queued, or not startable: no longer queued, and dropped).
local function dispatch(id, push, q, now, ttl)
  if q[2] ~= "" then
    local first = redis.call("ZRANGE", q[2], 0, 0, "WITHSCORES")
    if first[1] and tonumber(first[2]) <= redis_ms() then
      redis.call("ZREMRANGEBYSCORE", q[2], "-inf", redis_ms()) -- waits that have ended
      first = redis.call("ZRANGE", q[2], 0, 0, "WITHSCORES")
    end
    local w = first[1]
    if w then
      local s = start_task(q[3] .. id .. "}", q[4] .. id .. "}", now, w, ttl)
      if not s then return false end
      redis.call("ZREM", q[2], w)
      redis.call("LPUSH", q[5] .. w, id)
      redis.call("RPUSH", q[6] .. w, handoff_entry(id, s))
      return w
    end
  end
  redis.call(push, q[1], id)
  return false
end
