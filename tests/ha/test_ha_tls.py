"""TLS: ``rediss://`` with a CA, a server and a client certificate made by the test.

The redis-server listens only on a TLS port (``--port 0``) and asks for a client
certificate. Jobs are pushed with roadie's client and run by a real ``roadie run``
process over TLS; a wrong CA must give a clear error, not a traceback.
"""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from ha_jobs import RUNS
from ha_support import REDIS_SERVER, Server, Servers, has_tls, make_tls, spawn_roadie, stop_roadie
from support.wait import wait_until

from roadie.check import run_check
from roadie.client import Client
from roadie.config import Config
from roadie.redis.connection import connect, connect_async

pytestmark = [
    pytest.mark.redis,
    pytest.mark.system,
    pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed"),
    pytest.mark.skipif(REDIS_SERVER is not None and not has_tls(REDIS_SERVER),
                       reason="this redis-server was built without TLS support"),
    pytest.mark.timeout(60),
]


def tls_url(port: int, ca: Path, cert: Path, key: Path) -> str:
    return (f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={quote(str(ca))}"
            f"&ssl_certfile={quote(str(cert))}&ssl_keyfile={quote(str(key))}"
            "&ssl_cert_reqs=required")


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[Server, dict[str, Path], Path]]:
    """A TLS-only redis-server; yields (server, certificate paths, another CA)."""
    certs = make_tls(tmp_path / "tls")
    other = make_tls(tmp_path / "other", name="other")["ca"]
    servers = Servers(tmp_path / "servers")
    try:
        server = servers.redis(
            "tls", "--tls-cert-file", str(certs["server_cert"]),
            "--tls-key-file", str(certs["server_key"]),
            "--tls-ca-cert-file", str(certs["ca"]), "--tls-auth-clients", "yes",
            tls=True,
            client_kwargs={"ssl": True, "ssl_ca_certs": str(certs["ca"]),
                           "ssl_certfile": str(certs["client_cert"]),
                           "ssl_keyfile": str(certs["client_key"])},
        )
        server.wait_ready()
        yield server, certs, other
    finally:
        servers.close()


def test_jobs_run_over_tls(tls_server: tuple[Server, dict[str, Path], Path],
                           tmp_path: Path) -> None:
    server, certs, _ = tls_server
    url = tls_url(server.port, certs["ca"], certs["client_cert"], certs["client_key"])
    config = Config(redis_url=url, redis_url_configured=True)
    client = Client(config)
    jids = client.push_bulk({"class": "ha.Count", "args": [i]} for i in range(200))
    assert len(jids) == 200
    raw = server.client()
    assert raw.llen("queue:default") == 200
    # The jobs count their runs over TLS too (the same rediss:// URL).
    proc, log_path = spawn_roadie(url, tmp_path, "-c", "4", env={"HA_LEDGER_URL": url})
    try:
        wait_until(lambda: raw.hlen(RUNS) == 200, 30, 0.05,
                   f"the jobs did not all run over TLS:\n{log_path.read_text()[-2000:]}")
        assert raw.llen("queue:default") == 0
        assert sorted(int(v) for v in raw.hvals(RUNS)) == [1] * 200
    finally:
        stop_roadie(proc)
    # The server saw TLS clients only (it has no plain port at all).
    assert "Traceback" not in log_path.read_text(errors="replace")
    out = io.StringIO()
    assert run_check(config, out) == 0, out.getvalue()

    async def ping() -> bool:
        aclient = await connect_async(config)
        try:
            return bool(await aclient.ping())
        finally:
            await aclient.aclose()

    assert asyncio.run(ping())
    raw.close()


def test_wrong_ca_is_a_clear_error(tls_server: tuple[Server, dict[str, Path], Path],
                                   tmp_path: Path) -> None:
    server, certs, other_ca = tls_server
    url = tls_url(server.port, other_ca, certs["client_cert"], certs["client_key"])
    config = Config(redis_url=url, redis_url_configured=True)
    out = io.StringIO()
    assert run_check(config, out) == 1
    text = out.getvalue()
    assert "FAIL: the TLS handshake with 127.0.0.1:" in text, text
    assert "check ssl_ca_certs" in text, text
    assert "Traceback" not in text

    run = subprocess.run(
        [sys.executable, "-m", "roadie", "run", "-r", str(Path(__file__).parent / "ha_jobs.py")],
        env={"PATH": "/usr/bin:/bin", "REDIS_URL": url, "PYTHONUNBUFFERED": "1"},
        cwd=tmp_path, capture_output=True, text=True, timeout=30,
    )
    output = run.stdout + run.stderr
    assert run.returncode != 0, output
    assert "certificate verify failed" in output.lower(), output
    assert "Traceback" not in output, output
    # The URL shown is the configured one, and no TLS file was touched by mistake.
    assert f"127.0.0.1:{server.port}" in output, output
    with pytest.raises(Exception, match=r"(?i)certificate verify failed"):
        connect(config).ping()
