-- requeue: push jobs of this process back to the front of their queues, each
-- only if it was still in the in-flight list (a job whose outcome was written
-- meanwhile, or that was already pushed back, is not pushed twice).
-- KEYS[1]     the in-flight list
-- KEYS[2..n]  queue lists named by the entries below
-- ARGV        pairs: raw, queue key index (2..n)
-- Returns the number of jobs pushed back.
local pushed = 0
for i = 1, #ARGV, 2 do
  if redis.call('LREM', KEYS[1], 1, ARGV[i]) == 1 then
    redis.call('RPUSH', KEYS[tonumber(ARGV[i + 1])], ARGV[i])
    pushed = pushed + 1
  end
end
return pushed
