"""DNS rebinding: ``roadie web`` answers only to the ``Host`` names it is allowed.

A page of another site that points its own name at 127.0.0.1 is same-origin to the
browser; its requests reach the dashboard with that name as ``Host``. These tests
send such requests over real HTTP to ``roadie web`` (uvicorn) in a subprocess.
"""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
from typing import Any
from urllib.parse import urlsplit

import orjson
import redis
from starlette.testclient import TestClient
from web_support import KEYS, serve_web

from roadie.config import Config
from roadie.web import LOOPBACK_HOSTS, create_app


def request(url: str, path: str, host: str, method: str = "GET",
            headers: dict[str, str] | None = None) -> tuple[int, str, str]:
    """(status, content type, body) of one request sent with this ``Host`` header."""
    where = urlsplit(url)
    conn = http.client.HTTPConnection(where.hostname or "", where.port, timeout=10)
    try:
        conn.request(method, path, headers={"Host": host, **(headers or {})})
        reply = conn.getresponse()
        return reply.status, reply.getheader("content-type") or "", reply.read().decode()
    finally:
        conn.close()


def port_of(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None
    return port


def add_job(r: redis.Redis) -> None:
    r.lpush(KEYS.queue("default"), orjson.dumps(
        {"class": "SecretJob", "args": ["card 4242"], "jid": "s" * 24, "queue": "default"}))
    r.sadd(KEYS.queues, "default")


def test_default_bind_refuses_a_foreign_host_and_serves_loopback_names(
        redis_url: str, r: redis.Redis) -> None:
    add_job(r)
    with serve_web(redis_url) as url:
        port = port_of(url)
        evil = f"rebind.evil.example:{port}"
        status, kind, body = request(url, "/queues/default", evil)
        assert status == 400 and kind.startswith("text/plain")
        assert repr(evil) in body and "--allowed-host rebind.evil.example" in body
        assert "card 4242" not in body
        status, kind, body = request(url, "/api/queues/default", evil)
        assert status == 400 and kind == "application/json"
        refused: dict[str, Any] = orjson.loads(body)
        assert refused["host"] == evil and "DNS rebinding" in refused["error"]
        status, _, _ = request(url, "/api/queues/default/clear", evil, "POST",
                               {"X-Roadie": "1", "Content-Length": "0"})
        assert status == 400
        assert r.llen(KEYS.queue("default")) == 1
        for host in (f"localhost:{port}", "localhost", f"LOCALHOST.:{port}",
                     f"app.localhost:{port}", f"127.0.0.1:{port}", "127.8.9.10",
                     f"[::1]:{port}"):
            status, _, body = request(url, "/api/queues/default", host)
            assert status == 200, (host, body)
            assert "card 4242" in body
        # The name of a machine, or an address it has on a network, is not loopback.
        for host in ("localhost.evil.example", f"10.0.0.5:{port}", "127.0.0.1.nip.io"):
            assert request(url, "/api/stats", host)[0] == 400, host


def test_allowed_hosts_from_the_flag_and_the_environment(redis_url: str) -> None:
    with serve_web(redis_url, "--allowed-host", "dash.example.com",
                   "--allowed-host", ".example.org",
                   env={"ROADIE_WEB_ALLOWED_HOSTS": "jobs.internal, *.corp.test"}) as url:
        port = port_of(url)
        for host in ("dash.example.com", f"dash.example.com:{port}", "example.org",
                     "a.b.example.org", "jobs.internal:443", "x.corp.test",
                     f"localhost:{port}"):
            assert request(url, "/api/stats", host)[0] == 200, host
        for host in ("example.com", "other.example.com", "corp.test", "jobs.internal.evil",
                     "evil.example"):
            assert request(url, "/api/stats", host)[0] == 400, host


def test_a_non_loopback_bind_also_takes_ip_addresses_but_no_other_name(
        redis_url: str) -> None:
    with serve_web(redis_url, bind="0.0.0.0") as url:
        port = port_of(url)
        for host in (f"192.0.2.7:{port}", f"[2001:db8::1]:{port}", "localhost"):
            assert request(url, "/api/stats", host)[0] == 200, host
        status, _, body = request(url, "/", f"rebind.evil.example:{port}")
        assert status == 400 and "--allowed-host rebind.evil.example" in body


def test_a_bad_allowed_host_stops_roadie_web_with_a_clear_error(redis_url: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "roadie", "web", "--redis-url", redis_url,
         "--allowed-host", "https://dash.example.com/"],
        env={**os.environ, "ROADIE_WEB_ALLOWED_HOSTS": ""},
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode != 0
    assert "allowed host 'https://dash.example.com/' is not a host name" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_mounted_dashboard_enforces_its_own_list_when_given(config: Config) -> None:
    listed = TestClient(create_app(config, allowed_hosts=["jobs.example.com"]),
                        base_url="http://jobs.example.com")
    assert listed.get("/api/stats").status_code == 200
    other = TestClient(create_app(config, allowed_hosts=["jobs.example.com"]))
    refused = other.get("/queues")
    assert refused.status_code == 400
    assert "add it to allowed_hosts of roadie.web.create_app" in refused.text
    # Without a list the host framework's own setting decides (docs/dashboard.md).
    assert TestClient(create_app(config)).get("/api/stats").status_code == 200
    local = TestClient(create_app(config, allowed_hosts=LOOPBACK_HOSTS),
                       base_url="http://localhost:8000")
    assert local.get("/api/stats").status_code == 200
