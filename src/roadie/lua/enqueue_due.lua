-- enqueue_due: move due jobs from a sorted set (schedule or retry) onto their
-- queues in one atomic step. Sidekiq pops then pushes, which can lose a job
-- between the two; here a job is in the set or on its queue, never neither.
-- The caller read the due members (ZRANGE BYSCORE) and prepared their new form
-- (enqueued_at set, client middleware applied); a member another process moved
-- first is skipped because its ZREM returns 0.
-- KEYS[1]     the sorted set (schedule or retry)
-- KEYS[2]     the queues set
-- KEYS[3..n]  queue lists named by the entries below
-- ARGV        groups of 4: old member, new payload ('' = dropped by middleware),
--             queue key index (3..n), queue name
-- Returns the number of jobs pushed onto queues.
local moved = 0
for i = 1, #ARGV, 4 do
  if redis.call('ZREM', KEYS[1], ARGV[i]) == 1 and ARGV[i + 1] ~= '' then
    redis.call('SADD', KEYS[2], ARGV[i + 3])
    redis.call('LPUSH', KEYS[tonumber(ARGV[i + 2])], ARGV[i + 1])
    moved = moved + 1
  end
end
return moved
