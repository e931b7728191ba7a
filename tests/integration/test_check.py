"""``roadie check`` against real redis-server processes."""

from __future__ import annotations

import io
import re
import shutil
import tempfile
from pathlib import Path

import pytest
import redis
from support.redis import overfill

from roadie import acl
from roadie.check import preflight, run_check
from roadie.config import Config, load
from roadie.embedded import EmbeddedRedis, RedisServer, free_port

pytestmark = pytest.mark.redis


def check(config: Config) -> tuple[int, str]:
    out = io.StringIO()
    code = run_check(config, out)
    return code, out.getvalue()


def assert_one_failure_line(output: str, starts: str) -> None:
    failures = [line for line in output.splitlines() if line.startswith("FAIL:")]
    assert len(failures) == 1, output
    assert failures[0].startswith(f"FAIL: {starts}"), output
    assert output.rstrip().endswith(failures[0])
    assert "Traceback" not in output


def test_live_server_passes(config: Config) -> None:
    code, output = check(config)
    assert code == 0, output
    assert "Redis URL:" in output
    assert "server:           Redis " in output
    assert "(supported; roadie needs >= 6.2.0)" in output
    assert "ms (median of 10 PINGs)" in output
    assert "memory used:" in output
    assert output.rstrip().splitlines()[-1].startswith("OK: Redis is reachable and supported")


def test_aof_server_reports_persistence(redis_server: RedisServer) -> None:
    code, output = check(Config(redis_url=redis_server.url, redis_url_configured=True))
    assert code == 0, output
    assert "maxmemory-policy: noeviction" in output
    assert "AOF on (appendfsync everysec); RDB snapshots off" in output
    assert "WARNING" not in output


def test_refused_port_is_one_clear_line() -> None:
    port = free_port()
    code, output = check(Config(redis_url=f"redis://127.0.0.1:{port}/0", redis_url_configured=True))
    assert code == 1
    assert_one_failure_line(output, f"nothing listens at 127.0.0.1:{port}; start Redis")
    assert "REDIS_URL" in output
    assert "embedded://" in output
    assert "no Redis URL was configured" not in output


def test_unconfigured_url_is_called_out() -> None:
    port = free_port()
    code, output = check(Config(redis_url=f"redis://127.0.0.1:{port}/0"))
    assert code == 1
    assert "no Redis URL was configured, so the default is used" in output


def test_bad_url_is_one_clear_line() -> None:
    code, output = check(Config(redis_url="http://example.com", redis_url_configured=True))
    assert code == 1
    assert_one_failure_line(output, "bad Redis URL")


def test_eviction_policy_warns(tmp_path: Path) -> None:
    with RedisServer(directory=tmp_path, extra_args=["--maxmemory-policy", "allkeys-lru"]) as s:
        code, output = check(Config(redis_url=s.url, redis_url_configured=True))
    assert code == 0, output
    assert "maxmemory-policy: allkeys-lru" in output
    assert "WARNING: maxmemory-policy is allkeys-lru: eviction silently deletes jobs" in output
    assert "(1 warning above)" in output


def test_no_persistence_warns(tmp_path: Path) -> None:
    with RedisServer(directory=tmp_path, appendonly=False) as s:
        code, output = check(Config(redis_url=s.url, redis_url_configured=True))
    assert code == 0, output
    assert "AOF off; RDB snapshots off" in output
    assert "WARNING: no persistence" in output


def test_config_get_refused_is_unknown(tmp_path: Path) -> None:
    # Managed services often disable CONFIG; renaming it away does the same here.
    with RedisServer(directory=tmp_path, extra_args=["--rename-command", "CONFIG", ""]) as s:
        code, output = check(Config(redis_url=s.url, redis_url_configured=True))
    assert code == 0, output
    assert "maxmemory-policy: noeviction" in output  # INFO still tells
    assert "AOF on (appendfsync unknown); RDB save unknown" in output


def test_auth_failures(tmp_path: Path) -> None:
    with RedisServer(directory=tmp_path, extra_args=["--requirepass", "s3cret"]) as s:
        port = s.port
        code, output = check(Config(redis_url=s.url, redis_url_configured=True))
        assert code == 1
        assert_one_failure_line(output, f"authentication failed at 127.0.0.1:{port}")

        wrong = f"redis://:nope@127.0.0.1:{port}/0"
        code, output = check(Config(redis_url=wrong, redis_url_configured=True))
        assert code == 1
        assert_one_failure_line(output, "authentication failed")
        assert "nope" not in output  # the password is redacted

        right = f"redis://:s3cret@127.0.0.1:{port}/0"
        code, output = check(Config(redis_url=right, redis_url_configured=True))
        assert code == 0, output
        assert "s3cret" not in output


def test_stalled_server_times_out(redis_server: RedisServer) -> None:
    redis_server.pause()
    config = Config(
        redis_url=redis_server.url, redis_url_configured=True,
        socket_timeout_s=0.3, connect_timeout_s=0.3,
    )
    code, output = check(config)
    assert code == 1
    assert_one_failure_line(output, f"timed out talking to 127.0.0.1:{redis_server.port}")


def test_missing_database_is_explained(redis_server: RedisServer) -> None:
    url = f"redis://127.0.0.1:{redis_server.port}/999"
    code, output = check(Config(redis_url=url, redis_url_configured=True))
    assert code == 1
    assert_one_failure_line(output, "Redis at 127.0.0.1")
    assert "check the /db number" in output


def test_embedded_url_starts_the_embedded_server() -> None:
    folder = Path(tempfile.mkdtemp(prefix="roadie-chk-", dir="/tmp"))
    try:
        code, output = check(Config(redis_url=f"embedded://{folder}", redis_url_configured=True))
        assert code == 0, output
        assert f"embedded server:  unix socket {folder}/redis.sock" in output
        assert "AOF on (appendfsync everysec)" in output
    finally:
        EmbeddedRedis(folder).stop()
        shutil.rmtree(folder, ignore_errors=True)


# --- issue 17: a full Redis, too few clients, missing ACL permissions -------------------


def test_full_redis_fails_with_the_fix(tmp_path: Path) -> None:
    with RedisServer(directory=tmp_path, appendonly=False,
                     extra_args=["--maxmemory-policy", "noeviction"]) as s:
        admin = redis.Redis.from_url(s.url)
        limit = overfill(admin, 3)
        code, output = check(Config(redis_url=s.url, redis_url_configured=True))
        # roadie run's own checks let it start: it drains a full Redis.
        preflight(admin, Config(redis_url=s.url), s.url)
        admin.close()
    assert code == 1, output
    assert "permissions:      all the commands roadie needs" in output  # OOM is no NOPERM
    assert_one_failure_line(output, "Redis is full: it uses ")
    failure = output.rstrip().splitlines()[-1]
    assert f"({limit} bytes)" in failure
    assert "so it refuses new jobs (OOM). Raise maxmemory" in failure
    assert "free memory" in failure and "let roadie run drain the queues" in failure
    assert "OK:" not in output


def test_nearly_full_redis_warns(tmp_path: Path) -> None:
    with RedisServer(directory=tmp_path, appendonly=False,
                     extra_args=["--maxmemory-policy", "noeviction"]) as s:
        admin = redis.Redis.from_url(s.url)
        admin.mset({f"filler:{i}": b"x" * 100_000 for i in range(30)})
        used = int(admin.info("memory")["used_memory"])
        admin.config_set("maxmemory", str(int(used / 0.95)))
        code, output = check(Config(redis_url=s.url, redis_url_configured=True))
        admin.close()
    assert code == 0, output
    assert re.search(r"WARNING: Redis is nearly full: it uses \S+ of maxmemory \S+ \(9\d%\); "
                     "once full it refuses new jobs: raise maxmemory or free memory", output)
    assert "(2 warnings above)" in output  # and no persistence


def test_clients_are_reported(tmp_path: Path) -> None:
    with RedisServer(directory=tmp_path, appendonly=False, extra_args=["--maxclients", "17"]) as s:
        code, output = check(Config(redis_url=s.url, redis_url_configured=True))
    assert code == 0, output
    assert "connected, maxclients 17 (roadie run needs 17)" in output


def test_maxclients_below_the_need_is_one_failure(tmp_path: Path) -> None:
    with RedisServer(directory=tmp_path, appendonly=False, extra_args=["--maxclients", "12"]) as s:
        code, output = check(load(cli={"concurrency": 10}, env={"REDIS_URL": s.url},
                                  cli_flags={"concurrency": "-c/--concurrency"}))
    assert code == 1, output
    assert_one_failure_line(
        output, "roadie run with -c/--concurrency 10 needs 17 Redis connections (10 for the "
        f"processors + 7 shared), more than Redis at 127.0.0.1:{s.port} accepts "
        "(maxclients 12): lower the concurrency, or raise maxclients in redis.conf")


def acl_user(server: RedisServer, user: str, *rules: str) -> Config:
    admin = redis.Redis.from_url(server.url)
    admin.execute_command("ACL", "SETUSER", user, "reset", "on", ">pw", "resetchannels", *rules)
    admin.close()
    return Config(redis_url=f"redis://{user}:pw@127.0.0.1:{server.port}/0",
                  redis_url_configured=True)


def test_the_documented_acl_rule_passes(redis_server: RedisServer) -> None:
    code, output = check(acl_user(redis_server, "roadie", "~*", *acl.acl_rule().split()))
    assert code == 0, output
    assert "permissions:      all the commands roadie needs" in output


@pytest.mark.parametrize(("rule", "lacking"), [
    ("-evalsha", "evalsha"), ("-zadd", "zadd"), ("-multi", "multi"), ("-blmove", "blmove"),
    ("-info", "info"),
    ("-script", "script|load, script|exists"),  # Redis 6.2 takes no -script|load
])
def test_a_missing_command_fails_naming_it(
    redis_server: RedisServer, rule: str, lacking: str
) -> None:
    config = acl_user(redis_server, "roadie", "~*", *acl.acl_rule().split(), rule)
    r = redis.Redis.from_url(redis_server.url)
    r.lpush("queue:default", b'{"class":"X","args":[]}')
    code, output = check(config)
    assert code == 1, output
    assert_one_failure_line(output, f"the Redis user may not use commands {lacking}")
    assert f"grant +{lacking.replace(', ', ' +')} in the user's ACL rule" in output
    # The probes wrote nothing: the queue still holds its job, nothing else exists.
    assert r.lrange("queue:default", 0, -1) == [b'{"class":"X","args":[]}']
    assert r.keys("*") == [b"queue:default"]


def test_keys_outside_the_users_patterns_are_named(redis_server: RedisServer) -> None:
    # Sidekiq's keys, but not roadie's own (roadie:*) nor the process hashes.
    config = acl_user(redis_server, "roadie", "~queue:*", "~schedule", "~retry", "~dead",
                      "~processes", "~queues", "~stat:*", *acl.acl_rule().split())
    code, output = check(config)
    assert code == 1, output
    failure = output.rstrip().splitlines()[-1]
    assert failure.startswith("FAIL: the Redis user may not use keys roadie:inflight:"), output
    assert "(LMOVE)" in failure and "queue:default" not in failure
    assert "more: grant ~* (or ~<namespace>:* with a namespace)" in failure


def test_namespaced_user_with_its_namespace_pattern_passes(redis_server: RedisServer) -> None:
    config = acl_user(redis_server, "roadie", "~jobs:*", *acl.acl_rule().split())
    code, output = check(config.replace(namespace="jobs"))
    assert code == 0, output
    code, output = check(config)  # without the namespace: no key is allowed
    assert code == 1
    assert "may not use keys retry (WATCH), queue:default (LMOVE), " in output


def test_a_socket_timeout_too_short_for_roadie_run_warns(redis_server: RedisServer) -> None:
    code, output = check(Config(redis_url=redis_server.url, redis_url_configured=True,
                                socket_timeout_s=2.0))
    assert code == 0, output
    assert ("WARNING: socket_timeout_s must be at least 3 for roadie run, got 2: an idle "
            "processor waits 2 s") in output
    assert "(pushing jobs works)" in output
