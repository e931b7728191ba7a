"""Shared by the dashboard tests: real jobs in Redis, a client with a CSRF token."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import redis
from starlette.testclient import TestClient
from support.wait import wait_until

from roadie.client import Client
from roadie.config import Config
from roadie.embedded import free_port
from roadie.keys import Keys
from roadie.middleware import Hooks
from roadie.retry import compress_backtrace
from roadie.web import create_app

KEYS = Keys()
XSS = "<script>alert(1)</script>"


def failed_payload(klass: str, args: list[Any], message: str, *, jid: str,
                   queue: str = "default", retry_count: int = 1) -> bytes:
    now = time.time()
    return orjson.dumps({
        "class": klass, "args": args, "queue": queue, "jid": jid, "retry": True,
        "created_at": now - 60, "enqueued_at": now - 50, "failed_at": now - 40,
        "retry_count": retry_count, "error_class": "ValueError", "error_message": message,
        "error_backtrace": compress_backtrace([f'File "jobs.py", line {n}, in perform'
                                               for n in (10, 20)]),
    })


def seed(r: redis.Redis, config: Config) -> dict[str, Any]:
    """Two queued jobs, one scheduled, two retries, one dead: what the pages show."""
    client = Client(config, hooks=Hooks())
    queued = [client.push({"class": "EmailJob", "args": [i, "hello"]}) for i in range(2)]
    at = time.time() + 3600
    scheduled = client.push({"class": "LaterJob", "args": ["later"], "at": at})
    now = time.time()
    retries = [failed_payload("FailJob", [n], f"boom {n}", jid=f"retry{n:020d}")
               for n in range(2)]
    r.zadd(KEYS.retry, {retries[0]: now + 100, retries[1]: now + 200})
    dead = failed_payload("DeadJob", ["gone"], "no more", jid="dead" + "0" * 20)
    r.zadd(KEYS.dead, {dead: now - 10})
    return {"queued": queued, "scheduled": scheduled, "retries": retries, "dead": dead}


def token(client: TestClient, path: str = "/") -> str:
    """Load a page and read the CSRF token from its forms."""
    page = client.get(path)
    assert page.status_code == 200
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None, "page has no form"
    return found.group(1)


def web_client(config: Config, **kwargs: Any) -> TestClient:
    return TestClient(create_app(config, **kwargs))


@contextmanager
def serve_web(redis_url: str, *args: str, bind: str = "127.0.0.1",
              env: dict[str, str] | None = None) -> Iterator[str]:
    """``roadie web`` (uvicorn) in a subprocess on a free port; yields its base URL,
    ``http://<bind>:<port>``, once it answers."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "roadie", "web", "--redis-url", redis_url, "--host", bind,
         "--port", str(port), *args],
        env={**os.environ, "ROADIE_WEB_PASSWORD": "", "ROADIE_WEB_ALLOWED_HOSTS": "",
             **(env or {})},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    url = f"http://{'127.0.0.1' if bind == '0.0.0.0' else bind}:{port}"

    def up() -> bool:
        try:
            with urllib.request.urlopen(url + "/api/stats", timeout=1) as reply:
                return bool(reply.status == 200)
        except OSError:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            return False

    try:
        wait_until(up, timeout=20, message="roadie web did not start")
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
