"""``roadie check`` against real redis-server processes."""

from __future__ import annotations

import io
import shutil
import tempfile
from pathlib import Path

import pytest
from helpers import free_port

from roadie.check import run_check
from roadie.config import Config
from roadie.embedded import EmbeddedRedis, RedisServer

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
