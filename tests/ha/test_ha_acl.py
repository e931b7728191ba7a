"""ACL users and passwords: ``redis://user:password@host:port/db``.

An ACL user gets exactly the rule of docs/connections.md (``ROADIE_ACL_COMMANDS``
and ``~*``). Roadie's client, a real ``roadie run`` process (jobs, a retry, a
scheduled job), the dashboard and ``roadie check`` all work with it, and Redis logged
no denied command. A wrong password gives a clear error and never shows the password.
"""

from __future__ import annotations

import io
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from ha_jobs import RUNS
from ha_support import REDIS_SERVER, ROADIE_ACL_COMMANDS, Server, Servers, spawn_roadie, stop_roadie
from starlette.testclient import TestClient
from support.wait import wait_until

from roadie.api import DeadSet, RetrySet
from roadie.check import run_check
from roadie.client import Client
from roadie.config import Config
from roadie.redis.connection import connect, redact
from roadie.web import create_app

pytestmark = [
    pytest.mark.redis,
    pytest.mark.system,
    pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed"),
    pytest.mark.timeout(60),
]

PASSWORD = "s3cret-Pa55"


@pytest.fixture
def acl_server(tmp_path: Path) -> Iterator[Server]:
    servers = Servers(tmp_path / "servers")
    try:
        server = servers.redis("acl")
        server.wait_ready()
        admin = server.client()
        admin.execute_command(
            "ACL", "SETUSER", "roadie", "reset", "on", f">{PASSWORD}", "~*", "resetchannels",
            *ROADIE_ACL_COMMANDS.split(),
        )
        admin.execute_command("ACL", "LOG", "RESET")
        admin.close()
        yield server
    finally:
        servers.close()


def test_roadie_works_with_the_documented_acl(acl_server: Server, tmp_path: Path) -> None:
    port = acl_server.port
    url = f"redis://roadie:{PASSWORD}@127.0.0.1:{port}/2"
    admin = acl_server.client()
    config = Config(redis_url=url, redis_url_configured=True)
    client = Client(config)
    client.push_bulk({"class": "ha.Count", "args": [i]} for i in range(100))
    client.push({"class": "ha.Count", "args": [100], "at": time.time() + 0.5})
    client.push({"class": "ha.Missing", "args": []})  # no such class: goes to retry
    # The jobs count their runs as the default user, in database 3.
    ledger_url = f"redis://127.0.0.1:{port}/3"
    ledger = redis.Redis.from_url(ledger_url)
    proc, log_path = spawn_roadie(url, tmp_path, "-c", "3", env={"HA_LEDGER_URL": ledger_url})
    data = redis.Redis.from_url(url)
    try:
        wait_until(lambda: ledger.hlen(RUNS) == 101 and data.zcard("retry") == 1, 30, 0.05,
                   f"the jobs did not run:\n{log_path.read_text()[-2000:]}")
        assert data.llen("queue:default") == 0 and data.zcard("schedule") == 0
        http = TestClient(create_app(config))
        for path in ("/", "/busy", "/queues", "/queues/default", "/retries", "/scheduled",
                     "/dead", "/periodic", "/metrics", "/api/stats", "/api/queues",
                     "/api/processes", "/api/history", "/api/metrics"):
            response = http.get(path)
            assert response.status_code == 200, (path, response.status_code)
        # The admin API's moves (Lua scripts): retry -> dead -> back to its queue,
        # where the process fails it again (into retry).
        assert RetrySet(config).kill_all() == 1
        assert DeadSet(config).retry_all() == 1
        wait_until(lambda: data.zcard("retry") == 1 and data.zcard("dead") == 0, 20, 0.05,
                   "the job did not come back to the retry set")
        out = io.StringIO()
        assert run_check(config, out) == 0, out.getvalue()
    finally:
        stop_roadie(proc)
        data.close()
    log = log_path.read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]
    assert "NOPERM" not in log and "NoPermission" not in log, log[-3000:]
    denied = admin.execute_command("ACL", "LOG")
    assert denied == [], f"commands denied to roadie by the ACL: {denied}"
    assert PASSWORD not in log
    admin.close()


def test_wrong_password_is_a_clear_error(acl_server: Server, tmp_path: Path) -> None:
    url = f"redis://roadie:wrong-{PASSWORD}@127.0.0.1:{acl_server.port}/0"
    assert PASSWORD not in redact(url)
    config = Config(redis_url=url, redis_url_configured=True)
    out = io.StringIO()
    assert run_check(config, out) == 1
    text = out.getvalue()
    assert "FAIL: authentication failed" in text, text
    assert PASSWORD not in text, text
    run = subprocess.run(
        [sys.executable, "-m", "roadie", "run", "-r", str(Path(__file__).parent / "ha_jobs.py")],
        env={"PATH": "/usr/bin:/bin", "REDIS_URL": url}, cwd=tmp_path,
        capture_output=True, text=True, timeout=30,
    )
    output = run.stdout + run.stderr
    assert run.returncode != 0, output
    assert "refused our credentials" in output, output
    assert PASSWORD not in output and "Traceback" not in output, output
    with pytest.raises(redis.AuthenticationError):
        connect(config).ping()


# --- issue 17, item 8: missing permissions are refused at start, in one line ------------
@pytest.mark.parametrize(("rules", "missing"), [
    # Passed roadie check, then crashed roadie run with a traceback.
    (("~*", "-evalsha"), "commands evalsha: grant +evalsha in the user's ACL rule"),
    # A failing job ran again and again, never reaching retry or dead.
    (("~*", "-zadd"), "commands zadd: grant +zadd in the user's ACL rule"),
    (("~*", "-evalsha", "-zadd"), "commands zadd, evalsha: grant +zadd +evalsha in"),
    (("~*", "-info"), "commands info: grant +info in"),
    # Sidekiq's keys only: roadie's own (roadie:*) and the process hashes are refused.
    (("~queue:*", "~schedule", "~retry", "~dead", "~processes", "~queues", "~stat:*"),
     "keys roadie:inflight:"),
])
def test_run_and_check_refuse_a_user_without_the_permissions(
    acl_server: Server, tmp_path: Path, rules: tuple[str, ...], missing: str
) -> None:
    admin = acl_server.client()
    admin.execute_command("ACL", "SETUSER", "partial", "reset", "on", f">{PASSWORD}",
                          "resetchannels", *ROADIE_ACL_COMMANDS.split(), *rules)
    admin.lpush("queue:default", b'{"class":"ha.Count","args":[1],"jid":"j1","retry":true}')
    url = f"redis://partial:{PASSWORD}@127.0.0.1:{acl_server.port}/0"
    base = {"PATH": "/usr/bin:/bin", "REDIS_URL": url}
    check = subprocess.run([sys.executable, "-m", "roadie", "check"], env=base, cwd=tmp_path,
                           capture_output=True, text=True, timeout=30)
    assert check.returncode == 1, check.stdout + check.stderr
    failure = check.stdout.rstrip().splitlines()[-1]
    assert failure.startswith("FAIL: the Redis user may not use "), check.stdout
    assert missing in failure, check.stdout
    assert "Traceback" not in check.stdout + check.stderr

    proc, log_path = spawn_roadie(url, tmp_path)
    try:
        code = proc.wait(30)
    finally:
        stop_roadie(proc)
    output = log_path.read_text(errors="replace")
    assert code == 1, output
    assert "Traceback" not in output, output
    refusals = [line for line in output.splitlines() if line.startswith("roadie: ")]
    assert refusals == [f"roadie: cannot run jobs with Redis at redis://partial:***@127.0.0.1:"
                        f"{acl_server.port}/0: {failure.removeprefix('FAIL: ')}"], output
    assert PASSWORD not in output
    # Nothing was taken from the queue, nothing written.
    assert admin.lrange("queue:default", 0, -1) == [
        b'{"class":"ha.Count","args":[1],"jid":"j1","retry":true}']
    assert admin.keys("*") == [b"queue:default"]
    admin.close()
