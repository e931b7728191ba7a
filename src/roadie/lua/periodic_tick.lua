-- periodic_tick: push one tick of a periodic job, once for the whole cluster.
-- Every roadie process runs a scheduler and tries every tick; the first call for
-- a tick records it as the schedule's last run and pushes the job in the same
-- atomic step, so no tick is lost if a process dies between the two, and later
-- calls for that tick (or an older one) change nothing.
-- KEYS[1]  roadie:periodic:last (hash: schedule name -> last tick, epoch seconds)
-- KEYS[2]  the queues set
-- KEYS[3]  the queue list
-- ARGV[1]  schedule name
-- ARGV[2]  the tick, whole epoch seconds
-- ARGV[3]  the raw job ('' = dropped by client middleware: the tick is recorded,
--          nothing is pushed)
-- ARGV[4]  queue name
-- Returns 1 if this call took the tick, 0 if the tick was already taken.
local last = redis.call('HGET', KEYS[1], ARGV[1])
if last and tonumber(last) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if ARGV[3] ~= '' then
  redis.call('SADD', KEYS[2], ARGV[4])
  redis.call('LPUSH', KEYS[3], ARGV[3])
end
return 1
