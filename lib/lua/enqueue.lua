--[[
  Creates a task (enqueuing.lua); the caller queues its id next (dispatch.lua). On one Redis a new id
  goes through submit.lua instead, which does both.
  Input:
    KEYS[1] task hash
    ARGV[1] task name  ARGV[2] args JSON  ARGV[3] options JSON  ARGV[4] now (ms)  ARGV[5] ttl (s)
    ARGV[6] idempotency key or ""  ARGV[7] the submitting server's inbox channel or ""
  Output:
    {1, "queued"} created;  {0, state} the id existed already (see enqueuing.lua)
]]
return create_task(KEYS[1], ARGV)
