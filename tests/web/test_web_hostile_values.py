"""Stored values no page expects (a score or a payload time past year 9999, inf, a
string, a negative; a page number Redis cannot take) written straight into a real
Redis: every page still answers 200 and shows the entry, with the odd value marked."""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import quote

import orjson
import pytest
import redis
from starlette.testclient import TestClient
from web_support import KEYS, web_client

from roadie.config import Config

#: Scores as ZADD takes them (Redis refuses nan).
SCORES = {"big_ms": 1e15, "huge": 1e300, "inf": float("inf"), "minus_inf": float("-inf"),
          "very_negative": -1e20, "negative": -5.0}
#: Payload times as a hostile writer may store them.
TIMES: dict[str, Any] = {"t_big_ms": 1e15, "t_huge": 1e300, "t_very_negative": -1e20,
                         "t_string": "yesterday", "t_negative": -5, "t_list": [1, 2]}
#: Raw entries that are not even JSON a parser takes (1e400 overflows, NaN is no JSON).
RAW_ODD = [b'{"class":"Odd","args":[],"jid":"t_overflow","enqueued_at":1e400}',
           b'{"class":"Odd","args":[],"jid":"t_nan","enqueued_at":NaN}']


def job(jid: str, at: Any = None, **extra: Any) -> bytes:
    payload: dict[str, Any] = {"class": "HostileJob", "args": [jid], "jid": jid,
                               "queue": "default", **extra}
    if at is not None:
        payload.update(enqueued_at=at, created_at=at, failed_at=at, retried_at=at)
    return orjson.dumps(payload)


@pytest.fixture
def web(config: Config) -> TestClient:
    return web_client(config)


def fill(r: redis.Redis) -> None:
    for set_key in (KEYS.retry, KEYS.schedule, KEYS.dead):
        r.zadd(set_key, {job(jid): score for jid, score in SCORES.items()})
        r.zadd(set_key, {job(jid, at): time.time() for jid, at in TIMES.items()})
    r.lpush(KEYS.queue("default"), *[job(jid, at) for jid, at in TIMES.items()], *RAW_ODD)
    r.sadd(KEYS.queues, "default")
    r.sadd(KEYS.processes, "p:1:a")
    r.hset("p:1:a", mapping={
        "info": orjson.dumps({"identity": "p:1:a", "hostname": "hostile-host",
                              "started_at": 1e300}), "busy": 1, "beat": "inf"})
    r.hset("p:1:a:work", "t1", orjson.dumps({"queue": "default", "run_at": 1e300,
                                             "payload": orjson.loads(job("t_work", "x"))}))


def test_hostile_scores_and_times_keep_every_page_up(r: redis.Redis, web: TestClient) -> None:
    fill(r)
    queue = web.get("/queues/default")
    assert queue.status_code == 200
    for jid in TIMES:
        assert jid in queue.text
    assert "invalid time 1e+300" in queue.text
    assert "invalid time 1000000000000000.0" in queue.text
    assert "invalid time -1e+20" in queue.text
    assert "invalid time &#34;yesterday&#34;" in queue.text
    assert queue.text.count('<tr class="job">') == len(TIMES) + len(RAW_ODD)
    for name in ("retries", "scheduled", "dead"):
        page = web.get(f"/{name}")
        assert page.status_code == 200, name
        for jid in [*SCORES, *TIMES]:
            assert jid in page.text, (name, jid)
        assert "invalid time inf" in page.text and "invalid time -1e+20" in page.text
        links = re.findall(rf'href="/{name}/([^"]+)"', page.text)
        assert len(links) == len(SCORES) + len(TIMES)
        for link in links:
            entry = web.get(f"/{name}/{link}")
            assert entry.status_code == 200, (name, link)
            assert "HostileJob" in entry.text
        api = web.get(f"/api/sets/{name}")
        assert api.status_code == 200
        entries = {e["jid"]: e for e in api.json()["entries"]}
        assert set(entries) == {*SCORES, *TIMES}
        assert entries["inf"]["at"] is None and entries["huge"]["at"] is None
        assert entries["negative"]["at"] == -5.0
        assert entries["t_huge"]["enqueued_at"] is None
    api_queue = web.get("/api/queues/default")
    assert api_queue.status_code == 200 and len(api_queue.json()["jobs"]) == 8
    for path in ("/", "/queues", "/api/stats", "/api/queues"):
        assert web.get(path).status_code == 200, path
    busy = web.get("/busy")
    assert busy.status_code == 200 and "hostile-host" in busy.text and "t_work" in busy.text
    processes = web.get("/api/processes")
    assert processes.status_code == 200
    assert processes.json()["processes"][0]["beat"] == 0.0


def test_entries_with_negative_or_infinite_scores_can_be_acted_on(
        r: redis.Redis, web: TestClient) -> None:
    fill(r)
    api = web.get("/api/sets/retries").json()
    keys = {e["jid"]: e["key"] for e in api["entries"]}
    for jid in ("very_negative", "minus_inf", "inf", "negative"):
        key = quote(keys[jid], safe="")
        done = web.post(f"/api/sets/retries/{key}/delete", headers={"X-Roadie": "1"})
        assert done.json() == {"done": 1}, jid
    left = {orjson.loads(raw)["jid"] for raw in r.zrange(KEYS.retry, 0, -1)}
    assert left == {*SCORES, *TIMES} - {"very_negative", "minus_inf", "inf", "negative"}


def test_sidekiq8_integer_milliseconds_still_read_as_a_time(r: redis.Redis,
                                                            web: TestClient) -> None:
    ten_minutes_ago_ms = int((time.time() - 600) * 1000)
    r.lpush(KEYS.queue("default"), job("ms", ten_minutes_ago_ms))
    r.sadd(KEYS.queues, "default")
    page = web.get("/queues/default").text
    assert "10m ago" in page and "invalid time" not in page
    api = web.get("/api/queues/default").json()
    assert api["jobs"][0]["enqueued_at"] == pytest.approx(ten_minutes_ago_ms / 1000)


@pytest.mark.parametrize("page", ["1000000000000000000000", "1e21", "-3", "0", "abc", "",
                                  "99999999999999999999999999999999999999"])
def test_bad_page_numbers_are_clamped(r: redis.Redis, web: TestClient, page: str) -> None:
    r.lpush(KEYS.queue("big"), *[job(f"j{i:04d}") for i in range(30)])
    r.sadd(KEYS.queues, "big")
    r.zadd(KEYS.dead, {job(f"d{i:04d}"): time.time() - i for i in range(30)})
    for path in ("/queues/big", "/dead", "/api/queues/big", "/api/sets/dead"):
        reply = web.get(path, params={"page": page})
        assert reply.status_code == 200, (path, page)
    shown = web.get("/api/queues/big", params={"page": page}).json()["page"]
    huge = page.isdigit() and int(page) > 2
    assert shown == (2 if huge else 1)
    assert web.get("/dead", params={"page": page, "q": "d00"}).status_code == 200
    assert web.get("/api/history", params={"days": page}).status_code == 200
    assert web.get("/metrics", params={"hours": page}).status_code == 200
