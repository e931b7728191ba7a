"""The JSON API, cross-site refusal, CSRF token, auth hook and mounting."""

from __future__ import annotations

import base64

import orjson
import redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Mount
from starlette.testclient import TestClient
from web_support import KEYS, seed, token, web_client

from roadie.config import Config
from roadie.web import basic_auth, create_app

API = {"X-Roadie": "1"}


def test_api_reads(r: redis.Redis, config: Config) -> None:
    jobs = seed(r, config)
    web = web_client(config)
    stats = web.get("/api/stats").json()
    assert {k: stats[k] for k in ("enqueued", "retries", "scheduled", "dead", "busy")} == {
        "enqueued": 2, "retries": 2, "scheduled": 1, "dead": 1, "busy": 0}
    assert stats["queues"] == {"default": 2}
    assert web.get("/api/queues").json()[0]["name"] == "default"
    assert [j["jid"] for j in web.get("/api/queues/default").json()["jobs"]] == list(
        reversed(jobs["queued"]))
    retries = web.get("/api/sets/retries").json()
    assert retries["total"] == 2
    assert [e["error_message"] for e in retries["entries"]] == ["boom 0", "boom 1"]
    assert web.get("/api/sets/retries?q=boom%201").json()["total"] == 1
    assert web.get("/api/processes").json() == {"processes": [], "work": []}
    assert len(web.get("/api/history?days=7").json()["processed"]) == 7
    doc = web.get("/api/openapi.json").json()
    assert doc["openapi"] == "3.1.0" and "/api/sets/{set}/{key}/{action}" in doc["paths"]
    assert web.get("/api/sets/bogus").status_code == 404


def test_api_actions(r: redis.Redis, config: Config) -> None:
    seed(r, config)
    web = web_client(config)
    key = web.get("/api/sets/retries").json()["entries"][0]["key"]
    assert web.post(f"/api/sets/retries/{key}/retry").status_code == 403  # no header
    assert web.post(f"/api/sets/retries/{key}/retry", headers=API).json() == {"done": 1}
    assert web.post("/api/sets/retries/all/kill", headers=API).json() == {"done": 1}
    assert r.zcard(KEYS.retry) == 0 and r.zcard(KEYS.dead) == 2
    assert web.post("/api/queues/default/pause", headers=API).json() == {"done": 1}
    assert r.smembers(KEYS.paused) == {b"default"}
    web.post("/api/queues/default/clear", headers=API)
    assert r.exists(KEYS.queue("default")) == 0
    assert web.post("/api/processes/all/quiet", headers=API).json() == {"done": 0}


def test_cross_site_posts_are_refused(r: redis.Redis, config: Config) -> None:
    seed(r, config)
    web = web_client(config)
    csrf = token(web, "/retries")
    form = {"csrf": csrf, "action": "delete", "all": "1"}
    refused = web.post("/retries", data=form, headers={"Sec-Fetch-Site": "cross-site"})
    assert refused.status_code == 403
    refused = web.post("/retries", data=form, headers={"Origin": "https://evil.example"})
    assert refused.status_code == 403
    api = web.post("/api/sets/retries/all/delete",
                   headers={**API, "Origin": "https://evil.example"})
    assert api.status_code == 403
    # A wrong or missing token is refused too, even from the same site.
    assert web.post("/retries", data={**form, "csrf": "x" * 43}).status_code == 403
    fresh = TestClient(create_app(config))
    assert fresh.post("/retries", data=form).status_code == 403
    assert r.zcard(KEYS.retry) == 2
    ok = web.post("/retries", data=form, headers={"Sec-Fetch-Site": "same-origin",
                                                   "Origin": "http://testserver"})
    assert ok.status_code == 200 and r.zcard(KEYS.retry) == 0


def test_basic_auth(config: Config) -> None:
    web = web_client(config, auth=basic_auth("s3cret"))
    denied = web.get("/")
    assert denied.status_code == 401
    assert denied.headers["www-authenticate"].startswith("Basic")
    good = base64.b64encode(b"roadie:s3cret").decode()
    bad = base64.b64encode(b"roadie:nope").decode()
    assert web.get("/", headers={"Authorization": f"Basic {bad}"}).status_code == 401
    assert web.get("/", headers={"Authorization": f"Basic {good}"}).status_code == 200


def test_mounted_in_a_starlette_app_with_its_own_auth(r: redis.Redis, config: Config) -> None:
    seed(r, config)

    async def is_admin(request: Request) -> bool:
        return request.headers.get("x-user") == "admin"

    host = Starlette(routes=[Mount("/roadie", create_app(config, auth=is_admin))])
    web = TestClient(host)
    assert web.get("/roadie/").status_code == 401
    admin = {"x-user": "admin"}
    page = web.get("/roadie/retries", headers=admin)
    assert page.status_code == 200
    assert 'href="/roadie/static/roadie.css"' in page.text
    assert 'action="/roadie/retries"' in page.text
    assert "Path=/roadie" in page.headers["set-cookie"]
    assert web.get("/roadie/static/roadie.js", headers=admin).status_code == 200
    csrf = token_with(web, "/roadie/retries", admin)
    done = web.post("/roadie/retries", data={"csrf": csrf, "action": "delete", "all": "1"},
                    headers=admin, follow_redirects=False)
    assert done.status_code == 303
    assert done.headers["location"] == "/roadie/retries?done=delete:2"
    assert r.zcard(KEYS.retry) == 0
    assert orjson.loads(web.get("/roadie/api/stats", headers=admin).content)["retries"] == 0


def token_with(web: TestClient, path: str, headers: dict[str, str]) -> str:
    import re

    found = re.search(r'name="csrf" value="([^"]+)"', web.get(path, headers=headers).text)
    assert found is not None
    return found.group(1)


def test_roadie_web_command_serves_with_a_password(redis_url: str, r: redis.Redis) -> None:
    import os
    import subprocess
    import sys
    import urllib.error
    import urllib.request

    from support.wait import wait_until

    from roadie.embedded import free_port

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "roadie", "web", "--redis-url", redis_url, "--port", str(port)],
        env={**os.environ, "ROADIE_WEB_PASSWORD": "pw"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/api/stats"

    def status(headers: dict[str, str]) -> int:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                        timeout=2) as reply:
                return int(reply.status)
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError:
            assert proc.poll() is None, "roadie web exited"
            return 0

    try:
        assert wait_until(lambda: status({}), timeout=20) == 401
        good = base64.b64encode(b"roadie:pw").decode()
        assert status({"Authorization": f"Basic {good}"}) == 200
    finally:
        proc.terminate()
        proc.wait(10)
