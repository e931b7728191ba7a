"""roadie.embedded against real redis-server processes."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from support.wait import wait_until

from roadie import embedded
from roadie.config import Config
from roadie.embedded import EmbeddedRedis, RedisServer, free_port
from roadie.errors import ConfigError, RedisUnavailable
from roadie.redis.connection import connect

pytestmark = pytest.mark.redis


@pytest.fixture
def folder() -> Iterator[Path]:
    # Not tmp_path: it can be long enough (macOS TMPDIR) to break the unix-socket limit.
    path = Path(tempfile.mkdtemp(prefix="roadie-emb-", dir="/tmp"))
    try:
        yield path
    finally:
        EmbeddedRedis(path).stop()  # a daemon: it would outlive the test run
        shutil.rmtree(path, ignore_errors=True)


def _gone(pid: int) -> bool:
    """True once ``pid`` has exited. A daemon's zombie (exited, not yet reaped by
    init, which some containers do lazily) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def _failing_binary(directory: Path, text: str) -> str:
    script = directory / "fake-redis-server"
    script.write_text(f"#!/bin/sh\necho '{text}'\nexit 1\n")
    script.chmod(0o755)
    return str(script)


# -- EmbeddedRedis ----------------------------------------------------------------------


def test_start_serves_on_private_unix_socket(folder: Path) -> None:
    server = EmbeddedRedis(folder)
    url = server.start()
    assert url == f"unix://{folder}/redis.sock" == server.url
    assert server.running
    assert stat.S_IMODE(os.stat(folder / "redis.sock").st_mode) == 0o700
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        assert client.info("server")["process_id"] == server.pid
        assert client.config_get("port")["port"] == "0"  # no TCP listener at all
        assert client.config_get("appendonly")["appendonly"] == "yes"
        assert client.config_get("appendfsync")["appendfsync"] == "everysec"
        assert client.config_get("save")["save"] == ""
        assert client.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
    finally:
        client.close()


def test_second_object_on_same_folder_attaches(folder: Path) -> None:
    first = EmbeddedRedis(folder)
    url = first.start()
    assert first.start() == url  # idempotent
    second = EmbeddedRedis(str(folder) + "/")
    assert second.start() == url
    assert second.pid == first.pid
    assert EmbeddedRedis.from_url(f"embedded://{folder}").pid == first.pid


def test_concurrent_starts_from_processes_share_one_server(folder: Path) -> None:
    code = (
        "import sys; from roadie.embedded import EmbeddedRedis; "
        "s = EmbeddedRedis(sys.argv[1]); s.start(); print(s.pid)"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, env=env
        )
        for _ in range(4)
    ]
    pids = {int(p.communicate(timeout=60)[0]) for p in procs}
    assert all(p.returncode == 0 for p in procs)
    assert pids == {EmbeddedRedis(folder).pid}


def test_data_survives_stop_and_start(folder: Path) -> None:
    server = EmbeddedRedis(folder)
    client = redis.Redis.from_url(server.start())
    client.rpush("queue:default", b"job-1", b"job-2")
    client.close()
    old_pid = server.pid
    assert old_pid is not None
    server.stop()
    assert not server.running
    assert server.pid is None
    assert _gone(old_pid)
    assert not (folder / "redis.sock").exists()

    client = redis.Redis.from_url(server.start())
    try:
        assert server.pid != old_pid
        assert client.lrange("queue:default", 0, -1) == [b"job-1", b"job-2"]
    finally:
        client.close()


def test_stop_when_not_running_is_harmless(folder: Path) -> None:
    EmbeddedRedis(folder).stop()
    EmbeddedRedis(folder / "never-created").stop()


def test_connect_resolves_embedded_url(folder: Path) -> None:
    client = connect(Config(redis_url=f"embedded://{folder}", redis_url_configured=True))
    try:
        assert client.ping()
    finally:
        client.close()
    assert EmbeddedRedis(folder).running


def test_from_url_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert EmbeddedRedis.from_url("embedded://.roadie").directory == tmp_path / ".roadie"
    assert EmbeddedRedis.from_url("embedded:///srv/jobs").directory == Path("/srv/jobs")
    assert EmbeddedRedis.from_url("embedded://").directory == tmp_path / ".roadie" / "redis"
    with pytest.raises(ConfigError):
        EmbeddedRedis.from_url("redis://localhost")


def test_too_long_folder_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="shorter folder"):
        EmbeddedRedis("/tmp/" + "x" * 120)


def test_bad_binary_gives_clear_error(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROADIE_REDIS_SERVER", str(folder / "missing-binary"))
    with pytest.raises(RedisUnavailable, match="not an executable redis-server"):
        EmbeddedRedis(folder).start()


def test_binary_that_fails_shows_its_output(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROADIE_REDIS_SERVER", _failing_binary(tmp_path, "simulated FATAL error"))
    with pytest.raises(RedisUnavailable, match="simulated FATAL error"):
        EmbeddedRedis(folder).start()
    assert not EmbeddedRedis(folder).running


def test_server_dying_at_startup_reports_its_log(folder: Path) -> None:
    # A corrupt AOF makes redis-server exit after it has daemonized: only its log knows why.
    (folder / "appendonly.aof").write_bytes(b"*garbage that is not RESP\r\n")
    with pytest.raises(RedisUnavailable, match="did not start") as info:
        EmbeddedRedis(folder).start(timeout=20)
    assert "redis.log" in str(info.value)
    assert len(str(info.value).splitlines()) > 1  # the log's last lines are included


def test_cli_commands(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert embedded.cmd_status(str(folder)) == 1
    assert "is not running" in capsys.readouterr().out

    assert embedded.cmd_start(str(folder)) == 0
    out = capsys.readouterr().out
    pid = EmbeddedRedis(folder).pid
    assert f"embedded redis running at unix://{folder}/redis.sock (pid {pid})" in out

    assert embedded.cmd_status(f"embedded://{folder}") == 0
    assert f"(pid {pid})" in capsys.readouterr().out

    assert embedded.cmd_stop(str(folder)) == 0
    assert f"stopped (was pid {pid})" in capsys.readouterr().out
    assert embedded.cmd_stop(str(folder)) == 0
    assert "is not running" in capsys.readouterr().out


def test_cli_error_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert embedded.cmd_start("/tmp/" + "x" * 120) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("error: ")
    assert len(captured.err.strip().splitlines()) == 1


# -- RedisServer ------------------------------------------------------------------------


def _quick(server: RedisServer, timeout: float = 5.0) -> redis.Redis:
    return redis.Redis.from_url(
        server.url, socket_timeout=timeout, retry=Retry(NoBackoff(), 0)
    )


def test_restart_keeps_aof_data(redis_server: RedisServer) -> None:
    client = _quick(redis_server)
    client.set("survivor", b"yes")
    port, pid = redis_server.port, redis_server.pid
    redis_server.restart()
    assert redis_server.port == port
    assert redis_server.pid != pid
    assert client.get("survivor") == b"yes"  # redis-py reconnects to the same port
    client.close()


def test_kill_then_start_keeps_acknowledged_writes(tmp_path: Path) -> None:
    server = RedisServer(directory=tmp_path, extra_args=["--appendfsync", "always"])
    server.start()
    try:
        client = _quick(server)
        client.set("acked", b"1")
        server.kill()
        assert server.pid is None
        server.start()
        assert client.get("acked") == b"1"
        client.close()
    finally:
        server.stop()


def test_pause_and_resume(redis_server: RedisServer) -> None:
    client = _quick(redis_server, timeout=0.3)
    assert client.ping()
    redis_server.pause()
    with pytest.raises(redis.TimeoutError):
        client.ping()
    redis_server.resume()
    assert wait_until(client.ping, message="server did not answer after resume")
    client.close()


def test_stop_really_stops_even_when_paused(redis_server: RedisServer) -> None:
    pid = redis_server.pid
    assert pid is not None
    redis_server.pause()
    redis_server.stop()
    assert redis_server.pid is None
    assert _gone(pid)
    with pytest.raises(ConnectionRefusedError), socket.create_connection(
        ("127.0.0.1", redis_server.port), timeout=2
    ):
        pass


def test_context_manager_and_options() -> None:
    with RedisServer(appendonly=False, extra_args=["--maxmemory-policy", "allkeys-lru"]) as s:
        directory = s.directory
        assert s.url == f"redis://127.0.0.1:{s.port}/0"
        client = redis.Redis.from_url(s.url, decode_responses=True)
        assert client.config_get("appendonly")["appendonly"] == "no"
        assert client.config_get("maxmemory-policy")["maxmemory-policy"] == "allkeys-lru"
        client.close()
    assert s.pid is None
    assert not directory.exists()  # a folder it made itself is removed


def test_port_in_use_is_reported(tmp_path: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        with pytest.raises(RedisUnavailable, match="already in use"):
            RedisServer(port=port, directory=tmp_path).start()


def test_failing_binary_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROADIE_REDIS_SERVER", _failing_binary(tmp_path, "simulated crash"))
    server = RedisServer(port=free_port(), directory=tmp_path)
    with pytest.raises(RedisUnavailable, match="simulated crash"):
        server.start()
    assert server.pid is None
