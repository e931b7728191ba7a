-- fetch: move up to ARGV[1] jobs from the queues, in the order given, into a
-- process's in-flight list, atomically (reliable fetch: a job is always either
-- in a queue or in an in-flight list, never only in a process's memory).
-- KEYS[1]     in-flight list of the fetching process (roadie:inflight:<identity>)
-- KEYS[2..n]  queue lists (queue:<name>) in fetch order (strict, or shuffled by weight)
-- ARGV[1]     how many jobs to take at most
-- ARGV[2]     optional: the raw of a job that just succeeded, removed from the
--             in-flight list first (its acknowledgement rides on this round trip)
-- Returns a flat array {key_index, raw, key_index, raw, ...}; key_index is the
-- position of the queue in KEYS (2..n).
local want = tonumber(ARGV[1])
if ARGV[2] then
  redis.call('LREM', KEYS[1], 1, ARGV[2])
end
local out = {}
local got = 0
for i = 2, #KEYS do
  while got < want do
    local raw = redis.call('LMOVE', KEYS[i], KEYS[1], 'RIGHT', 'LEFT')
    if not raw then break end
    out[#out + 1] = i
    out[#out + 1] = raw
    got = got + 1
  end
  if got >= want then break end
end
return out
