-- fetch: move up to ARGV[1] jobs from the queues, in the order given, into a
-- process's in-flight list, atomically (reliable fetch: a job is always either
-- in a queue or in an in-flight list, never only in a process's memory).
-- KEYS[1]     in-flight list of the fetching process (roadie:inflight:<identity>)
-- KEYS[2..n]  queue lists (queue:<name>) in fetch order (strict, or shuffled by weight)
-- ARGV[1]     how many jobs to take at most
-- ARGV[2]     share: when > 0, take at most max(1, floor(length / share)) jobs from
--             the first non-empty queue, so that a processor takes several jobs
--             only from a queue deep enough to keep every processor busy (share =
--             the process's concurrency); 0 takes ARGV[1] whatever the length
-- ARGV[3..]   raws of jobs that just succeeded, removed from the in-flight list
--             first (their acknowledgement rides on this round trip). Searched from
--             the tail, where the oldest in-flight jobs are.
-- Returns a flat array {key_index, raw, key_index, raw, ...}; key_index is the
-- position of the queue in KEYS (2..n).
local want = tonumber(ARGV[1])
local share = tonumber(ARGV[2])
-- When Redis is over maxmemory (noeviction) it refuses a script's first write if
-- that write may use memory (LMOVE may), and lets every later one through: a full
-- Redis must keep handing out jobs, since running and acknowledging them is what
-- frees memory. So the first write is one that can use none (an LTRIM that keeps
-- the whole list, O(1)). Redis 6.2 and 7 both follow this rule.
redis.call('LTRIM', KEYS[1], 0, -1)
for i = 3, #ARGV do
  redis.call('LREM', KEYS[1], -1, ARGV[i])
end
local out = {}
local got = 0
for i = 2, #KEYS do
  if got == 0 and share > 0 then
    local len = redis.call('LLEN', KEYS[i])
    if len > 0 then
      want = math.min(want, math.max(1, math.floor(len / share)))
    end
  end
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
