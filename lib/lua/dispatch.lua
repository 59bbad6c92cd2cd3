--[[
  Queues a task id on a shard, or on one Redis hands it to a worker parked there (handing.lua): the
  second step of a submit, after enqueue.lua stored the task.
  Input:
    KEYS[1] queue shard
    ARGV[1] id  ARGV[2] LPUSH (new) | RPUSH (front)  ARGV[3] now (ms)  ARGV[4] ttl (s)
    ARGV[5] parked set ("" on a cluster)  ARGV[6] task head  ARGV[7] events head  ARGV[8] active head
    ARGV[9] hand-off head (see handing.lua)
  Output:
    the worker it was handed to, or false (queued)
]]
return dispatch(ARGV[1], ARGV[2], {KEYS[1], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9]}, ARGV[3], tonumber(ARGV[4]))
