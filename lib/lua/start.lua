--[[
  Starts a task a worker took off a queue (see starting.lua); the caller drops a refused id from its
  processing list.
  Input:
    KEYS[1] task hash  KEYS[2] events list
    ARGV[1] worker id  ARGV[2] ttl (s)
  Output:
    {task, args, opts, attempt, created} started;  false not startable;  "ours" started by this worker already
]]
return start_task(KEYS[1], KEYS[2], now_ms(), ARGV[1], tonumber(ARGV[2]))
