--[[
  Starts a task a worker took off a queue (see starting.lua); the caller drops a refused id from its
  processing list.
  Input:
    KEYS[1] task hash  KEYS[2] events list
    ARGV[1] now (ms)  ARGV[2] worker id  ARGV[3] ttl (s)
  Output:
    {task, args, opts, attempt, created} started;  false not startable;  "ours" started by this worker already
]]
return start_task(KEYS[1], KEYS[2], ARGV[1], ARGV[2], tonumber(ARGV[3]))
