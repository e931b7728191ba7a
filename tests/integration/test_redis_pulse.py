"""The liveness pulse: a child process that keeps ``roadie:alive:<identity>`` fresh.

For a plain Redis (TCP or Unix socket) it is ``litepulse.py``, standard library only;
for TLS and Sentinel URLs, the redis-py pulse. Both are real child processes here,
against a real redis-server.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
import redis
from support.redis import NOEVICTION, overfill
from support.wait import wait_until

from roadie.config import Config
from roadie.embedded import RedisServer
from roadie.redis.connection import connect
from roadie.server.pulse.child import LITE_PULSE, Pulse, lite_target

KEY = "roadie:alive:pulse-test"
USER, PASSWORD = "roadie-pulse-test", "s3cret pass"


def pulse_config(url: str) -> Config:
    return Config(redis_url=url, redis_url_configured=True, heartbeat_interval_s=0.1,
                  process_ttl_s=2.0)


@pytest.fixture
def acl_user(r: redis.Redis) -> Iterator[str]:
    """A user with a password on the test's Redis; its name."""
    r.acl_setuser(USER, enabled=True, passwords=[f"+{PASSWORD}"], keys=["*"],
                  commands=["+@all"])
    try:
        yield USER
    finally:
        r.acl_deluser(USER)


def test_lite_target_reads_the_clients_connection_settings(tmp_path: Path) -> None:
    tcp = connect(pulse_config("redis://u:p%40ss@127.0.0.1:6399/4"))
    unix = connect(pulse_config(f"unix://{tmp_path}/r.sock?db=2"))
    tls = connect(pulse_config("rediss://127.0.0.1:6399/0"))
    sentinel = connect(pulse_config("redis+sentinel://127.0.0.1:26379/mymaster/0"))

    assert lite_target(tcp) == {"host": "127.0.0.1", "port": 6399, "db": 4,
                                "username": "u", "password": "p@ss"}
    assert lite_target(unix) == {"path": f"{tmp_path}/r.sock", "db": 2,
                                 "username": None, "password": None}
    # TLS and Sentinel need redis-py: the full pulse handles them.
    assert lite_target(tls) is None
    assert lite_target(sentinel) is None


def test_the_lite_pulse_logs_in_selects_the_db_and_keeps_beating(
    r: redis.Redis, redis_url: str, acl_user: str
) -> None:
    given = urlsplit(redis_url)
    url = f"redis://{acl_user}:{quote(PASSWORD)}@{given.hostname}:{given.port}{given.path}"
    client = connect(pulse_config(url))
    pulse = Pulse.start(client, KEY, pulse_config(url))
    assert pulse is not None
    try:
        # The standard-library pulse, isolated from the environment and site-packages.
        # (What it was started with: /proc/<pid>/cmdline can still be empty right
        # after the exec.)
        assert list(pulse.popen.args)[1:] == ["-I", "-S", LITE_PULSE]
        wait_until(lambda: r.exists(KEY), message="the pulse never set the liveness key")
        assert 0 < r.pttl(KEY) <= 2000
        # It beats again and again...
        r.delete(KEY)
        wait_until(lambda: r.exists(KEY), message="the pulse did not beat a second time")
        # ...and comes back after losing its connection.
        assert r.client_kill_filter(user=acl_user) >= 1
        r.delete(KEY)
        wait_until(lambda: r.exists(KEY), message="the pulse did not reconnect")
    finally:
        pulse.stop()
    assert pulse.returncode == 0


def test_the_lite_pulse_reaches_redis_on_a_unix_socket(tmp_path: Path) -> None:
    sock = tmp_path / "redis.sock"
    server = RedisServer(directory=tmp_path / "data", appendonly=False,
                         extra_args=["--unixsocket", str(sock), "--unixsocketperm", "700"])
    server.start()
    try:
        url = f"unix://{sock}?db=3"
        pulse = Pulse.start(connect(pulse_config(url)), KEY, pulse_config(url))
        assert pulse is not None
        r3 = redis.Redis(unix_socket_path=str(sock), db=3)
        try:
            wait_until(lambda: r3.exists(KEY), message="no liveness key in db 3")
        finally:
            pulse.stop()
            r3.close()
        assert pulse.returncode == 0
    finally:
        server.stop()


def test_a_stopped_pulse_exits(r: redis.Redis, config: Config) -> None:
    cfg = config.replace(heartbeat_interval_s=0.1, process_ttl_s=2.0)
    pulse = Pulse.start(connect(cfg), KEY, cfg)
    assert pulse is not None
    wait_until(lambda: r.exists(KEY), message="the pulse never set the liveness key")
    pulse.stop()

    assert not pulse.alive and pulse.returncode == 0
    # Its process is gone (reaped): nothing can write the key again.
    with pytest.raises(ProcessLookupError):
        os.kill(pulse.pid, 0)


@pytest.fixture
def full_redis(private_redis: Callable[..., RedisServer]) -> RedisServer:
    """A private redis-server with ``noeviction``, which the test puts over its
    ``maxmemory`` (``overfill``): it then refuses every command that needs memory."""
    return private_redis(*NOEVICTION)


@pytest.mark.parametrize("lite", [True, False], ids=["litepulse", "redis-py pulse"])
def test_the_pulse_keeps_the_liveness_key_alive_while_redis_is_full(
    full_redis: RedisServer, lite: bool
) -> None:
    cfg = pulse_config(full_redis.url).replace(heartbeat_interval_s=0.1, process_ttl_s=1.1)
    r = full_redis.client()
    pulse = Pulse.start(connect(cfg), KEY, cfg, lite=lite)
    assert pulse is not None
    try:
        wait_until(lambda: r.exists(KEY), message="the pulse never set the liveness key")
        overfill(r)
        # Several TTLs go by (4.5 x 1.1 s, the shortest TTL Config allows for beats of
        # 0.1 s): the key is never missing.
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            assert r.exists(KEY), "the liveness key expired while Redis was full"
            time.sleep(0.05)
        # Deleted (as at a clean exit of an earlier life), it comes back once there is room.
        r.delete(KEY)
        r.config_set("maxmemory", "0")
        wait_until(lambda: r.exists(KEY), message="the pulse did not set the key again")
    finally:
        pulse.stop()
        r.close()
