-- fail: write a failed job's outcome: move it from the in-flight list (or, for an
-- entry the poller cannot read, from the schedule or retry set) to the retry set, or
-- to the dead set (then trimmed by age and size), in one atomic step. Only an entry
-- still there moves: after a lost reply and a retried call, once a janitor returned
-- the job to its queue, or when another poller took it, nothing is added twice.
-- The removal comes first: it uses no memory, so Redis runs the ZADD after it even
-- when it is over maxmemory (noeviction), and a full Redis keeps recording failures
-- (the entry replaces the in-flight one: no memory is gained in all).
-- KEYS[1]  where the entry is: in-flight list of the process (roadie:inflight:<identity>),
--          or a sorted set (ARGV[6] = 'z')
-- KEYS[2]  the retry set or the dead set
-- ARGV[1]  the raw job as fetched
-- ARGV[2]  the new raw (with its error fields)
-- ARGV[3]  score: when to retry, or the time of death (epoch seconds)
-- ARGV[4]  dead set only: entries scored below this are trimmed ('' for the retry set)
-- ARGV[5]  dead set only: how many entries the dead set keeps at most
-- ARGV[6]  'z' when KEYS[1] is a sorted set, else '' (a list)
-- Returns 1 if the entry was there and moved, else 0.
local removed
if ARGV[6] == 'z' then
  removed = redis.call('ZREM', KEYS[1], ARGV[1])
else
  removed = redis.call('LREM', KEYS[1], 1, ARGV[1])
end
if removed == 0 then
  return 0
end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
if ARGV[4] ~= '' then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[4])
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(tonumber(ARGV[5]) + 1))
end
return 1
