-- recover: return the in-flight jobs of a dead process to the front of their
-- queues (or to the dead set, for a job that keeps crashing its process).
-- Refuses to touch anything while the owner's liveness key exists, so a live
-- process never loses its running jobs to another one.
-- KEYS[1]     in-flight list of the dead process
-- KEYS[2]     liveness key of that process (roadie:alive:<identity>)
-- KEYS[3]     the dead set
-- KEYS[4..n]  queue lists named by the entries below
-- ARGV[1]     now (epoch seconds), ARGV[2] dead-set cutoff score, ARGV[3] dead max jobs
-- ARGV[4..]   groups of 4: old raw, action ('q' requeue | 'd' dead), new raw,
--             queue key index (4..n; ignored for 'd')
-- Returns -1 if the owner is alive, else the number of entries handled.
if redis.call('EXISTS', KEYS[2]) == 1 then
  return -1
end
local handled = 0
for i = 4, #ARGV, 4 do
  if redis.call('LREM', KEYS[1], 1, ARGV[i]) == 1 then
    if ARGV[i + 1] == 'd' then
      redis.call('ZADD', KEYS[3], ARGV[1], ARGV[i + 2])
    else
      redis.call('RPUSH', KEYS[tonumber(ARGV[i + 3])], ARGV[i + 2])
    end
    handled = handled + 1
  end
end
if handled > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. ARGV[2])
  redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -(tonumber(ARGV[3]) + 1))
end
return handled
