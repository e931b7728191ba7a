"""Every page and action of the dashboard, against a real Redis holding real jobs."""

from __future__ import annotations

import re
import time

import orjson
import pytest
import redis
from starlette.testclient import TestClient
from web_support import KEYS, XSS, failed_payload, seed, token, web_client

from roadie.api import ProcessSet, RetrySet
from roadie.config import Config
from roadie.web.data import entry_key


@pytest.fixture
def web(config: Config) -> TestClient:
    return web_client(config)


def retry_key(config: Config, jid: str) -> str:
    entry = RetrySet(config).find_job(jid)
    assert entry is not None
    return entry_key(entry)


def test_every_page_answers_with_the_jobs(r: redis.Redis, config: Config,
                                          web: TestClient) -> None:
    jobs = seed(r, config)
    home = web.get("/")
    assert home.status_code == 200
    assert re.search(r'data-stat="enqueued">2<', home.text)
    assert re.search(r'data-stat="retries">2<', home.text)
    assert re.search(r'data-stat="scheduled">1<', home.text)
    assert re.search(r'data-stat="dead">1<', home.text)
    assert "redis_version" not in home.text and "Version" in home.text
    for days in (7, 30, 90, 180):
        assert web.get(f"/?days={days}").status_code == 200
    assert "No processes running." in web.get("/busy").text
    queues = web.get("/queues").text
    assert 'href="/queues/default"' in queues
    queue = web.get("/queues/default").text
    assert all(jid in queue for jid in jobs["queued"])
    assert jobs["scheduled"] in web.get("/scheduled").text
    retries = web.get("/retries").text
    assert "boom 0" in retries and "boom 1" in retries
    assert "no more" in web.get("/dead").text
    assert web.get("/nothing").status_code == 404


def test_entry_page_shows_payload_and_backtrace(r: redis.Redis, config: Config,
                                                web: TestClient) -> None:
    seed(r, config)
    key = retry_key(config, "retry" + "0" * 20)
    page = web.get(f"/retries/{key}")
    assert page.status_code == 200
    assert 'File &#34;jobs.py&#34;, line 10, in perform' in page.text
    assert "&#34;retry_count&#34;: 1" in page.text
    assert web.get("/retries/1.0-nope").status_code == 404


def test_search_and_order(r: redis.Redis, config: Config, web: TestClient) -> None:
    seed(r, config)
    found = web.get("/retries", params={"q": "boom 1"}).text
    assert "boom 1" in found and "boom 0" not in found
    assert "Nothing matches." in web.get("/retries", params={"q": "zzz"}).text
    desc = web.get("/retries", params={"order": "desc"}).text
    assert desc.index("boom 1") < desc.index("boom 0")
    asc = web.get("/retries").text
    assert asc.index("boom 0") < asc.index("boom 1")


def test_paging_a_queue(r: redis.Redis, config: Config, web: TestClient) -> None:
    r.lpush(KEYS.queue("big"), *[orjson.dumps({"class": "P", "args": [i], "jid": f"j{i:04d}",
                                                "queue": "big"}) for i in range(30)])
    r.sadd(KEYS.queues, "big")
    first = web.get("/queues/big").text
    assert "page 1 of 2 (30)" in first and "j0029" in first and "j0004" not in first
    second = web.get("/queues/big?page=2").text
    assert "j0004" in second and "j0029" not in second


def test_retry_delete_kill_one_and_many(r: redis.Redis, config: Config,
                                        web: TestClient) -> None:
    seed(r, config)
    csrf = token(web, "/retries")
    k0 = retry_key(config, "retry" + "0" * 20)
    k1 = retry_key(config, "retry" + "0" * 19 + "1")
    got = web.post("/retries", data={"csrf": csrf, "action": "retry", "key": k0})
    assert got.status_code == 200 and "Done: retry:1" in got.text
    assert r.zcard(KEYS.retry) == 1 and r.llen(KEYS.queue("default")) == 3
    moved = orjson.loads(r.lindex(KEYS.queue("default"), 0))
    assert moved["jid"] == "retry" + "0" * 20 and moved["retry_count"] == 0
    web.post("/retries", data={"csrf": csrf, "action": "kill", "key": k1})
    assert r.zcard(KEYS.retry) == 0 and r.zcard(KEYS.dead) == 2
    dead_keys = re.findall(r'name="key" value="([^"]+)"', web.get("/dead").text)
    assert len(dead_keys) == 2
    web.post("/dead", data={"csrf": csrf, "action": "delete", "key": dead_keys})
    assert r.zcard(KEYS.dead) == 0


def test_act_on_all(r: redis.Redis, config: Config, web: TestClient) -> None:
    seed(r, config)
    csrf = token(web, "/retries")
    web.post("/retries", data={"csrf": csrf, "action": "retry", "all": "1"})
    assert r.zcard(KEYS.retry) == 0 and r.llen(KEYS.queue("default")) == 4
    web.post("/scheduled", data={"csrf": csrf, "action": "enqueue", "all": "1"})
    assert r.zcard(KEYS.schedule) == 0 and r.llen(KEYS.queue("default")) == 5
    web.post("/dead", data={"csrf": csrf, "action": "delete", "all": "1"})
    assert r.zcard(KEYS.dead) == 0


def test_queue_delete_clear_pause(r: redis.Redis, config: Config, web: TestClient) -> None:
    jobs = seed(r, config)
    csrf = token(web, "/queues/default")
    raw = next(x for x in r.lrange(KEYS.queue("default"), 0, -1)
               if orjson.loads(x)["jid"] == jobs["queued"][0])
    web.post("/queues/default", data={"csrf": csrf, "action": "delete", "raw": raw.decode()})
    assert [orjson.loads(x)["jid"] for x in r.lrange(KEYS.queue("default"), 0, -1)] == [
        jobs["queued"][1]]
    web.post("/queues/default", data={"csrf": csrf, "action": "pause"})
    assert r.smembers(KEYS.paused) == {b"default"}
    assert "paused" in web.get("/queues").text
    web.post("/queues/default", data={"csrf": csrf, "action": "resume"})
    assert r.smembers(KEYS.paused) == set()
    web.post("/queues/default", data={"csrf": csrf, "action": "clear"})
    assert r.exists(KEYS.queue("default")) == 0 and r.smembers(KEYS.queues) == set()


def test_busy_page_quiet_and_stop(r: redis.Redis, config: Config, web: TestClient) -> None:
    ident = "box:4242:abc"
    info = {"hostname": "box", "pid": 4242, "tag": "app", "started_at": time.time() - 90,
            "queues": ["default"], "concurrency": 5, "identity": ident,
            "version": "roadie 0.1.0"}
    r.sadd(KEYS.processes, ident)
    r.hset(KEYS.process(ident), mapping={"info": orjson.dumps(info), "busy": 1,
                                         "beat": repr(time.time()), "quiet": "false",
                                         "rss": 20480, "concurrency": 5})
    job = orjson.dumps({"class": "SlowJob", "args": [XSS], "jid": "w" * 24,
                        "queue": "default"}).decode()
    r.hset(KEYS.work(ident), "t1", orjson.dumps({"queue": "default", "payload": job,
                                                 "run_at": time.time() - 5}))
    page = web.get("/busy").text
    assert "box:4242" in page and "SlowJob" in page and "20.0 MB" in page
    assert XSS not in page
    csrf = token(web, "/busy")
    web.post("/busy", data={"csrf": csrf, "action": "quiet", "identity": ident})
    assert r.lrange(KEYS.signals(ident), 0, -1) == [b"TSTP"]
    web.post("/busy", data={"csrf": csrf, "action": "stop", "identity": "*"})
    assert r.lrange(KEYS.signals(ident), 0, -1) == [b"TERM", b"TSTP"]
    assert [p.identity for p in ProcessSet(config)] == [ident]


def test_xss_in_args_and_errors_is_escaped(r: redis.Redis, config: Config,
                                           web: TestClient) -> None:
    evil = failed_payload(XSS, [XSS, {"<b>": "</td><img src=x onerror=alert(1)>"}], XSS,
                          jid="x" * 24)
    r.zadd(KEYS.retry, {evil: time.time() + 60})
    r.zadd(KEYS.dead, {evil: time.time()})
    r.lpush(KEYS.queue(XSS), evil)
    r.sadd(KEYS.queues, XSS)
    key = retry_key(config, "x" * 24)
    pages = ["/retries", "/dead", f"/retries/{key}", "/queues",
             "/queues/%3Cscript%3Ealert(1)%3C%2Fscript%3E", "/?days=7"]
    for path in pages:
        page = web.get(path)
        assert page.status_code == 200, path
        assert "<script>alert" not in page.text, path
        assert "<img src=x" not in page.text, path
        assert "<script" not in page.text.replace(
            '<script src="/static/roadie.js" defer></script>', ""), path
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in web.get("/retries").text


def test_security_headers_and_static_files(config: Config, web: TestClient) -> None:
    page = web.get("/")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert page.headers["x-frame-options"] == "DENY"
    assert "roadie_csrf=" in page.headers["set-cookie"]
    assert "SameSite=Strict" in page.headers["set-cookie"]
    assert web.get("/static/roadie.js").status_code == 200
    assert web.get("/static/roadie.css").headers["content-type"].startswith("text/css")


