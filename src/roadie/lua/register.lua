-- register: mark a starting process alive and list it among the owners of in-flight
-- lists, before its first fetch, so that a janitor finds its jobs if it dies. Redis
-- runs it even when over maxmemory (noeviction): its first write, a PEXPIRE, uses no
-- memory, and Redis then lets the script's later writes through. A process started to
-- drain a full Redis must be able to register.
-- KEYS[1]  liveness key of the process (roadie:alive:<identity>)
-- KEYS[2]  roadie:inflight-owners
-- ARGV[1]  the process's identity
-- ARGV[2]  liveness TTL, ms
-- Returns 1.
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('SET', KEYS[1], '1', 'PX', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
return 1
