"""The Metrics page and ``/api/metrics``: metrics recorded by a real Processor and
flushed by a real Heartbeat into a real Redis."""

from __future__ import annotations

import re
from typing import Any

import redis
from starlette.testclient import TestClient
from web_support import KEYS, XSS, web_client

from roadie.client import Client
from roadie.config import Config
from roadie.job import Job
from roadie.keys import HISTOGRAM_BUCKETS
from roadie.middleware import Hooks
from roadie.registry import Registry
from roadie.server.fetch import Fetcher
from roadie.server.heartbeat import Heartbeat
from roadie.server.outage import Outage
from roadie.server.processor import LoopThread, Processor
from roadie.server.state import State

IDENTITY = "webhost:77:abcdefabcdef"


def record(r: redis.Redis, config: Config) -> None:
    """Run 3 ``Ok`` jobs and 2 failing jobs named with HTML, then beat once."""
    reg = Registry()

    class Ok(Job, registry=reg, name="Ok"):
        def perform(self, *args: Any) -> None:
            pass

    class Bad(Job, registry=reg, name=XSS):
        def perform(self, *args: Any) -> None:
            raise RuntimeError("no")

    client = Client(config, hooks=Hooks())
    for i in range(3):
        client.push({"class": "Ok", "args": [i]})
    for _ in range(2):
        client.push({"class": XSS, "args": [], "retry": False})
    state = State(IDENTITY)
    proc = Processor(0, config=config, keys=KEYS, fetcher=Fetcher(r, config, KEYS, IDENTITY),
                     state=state, hooks=Hooks(), registry=reg,
                     outage=Outage("redis://test"), loop_thread=LoopThread)
    while got := proc.fetcher.fetch(1):
        proc.runner.process(got[0])
    hb = Heartbeat(r, config, KEYS, state, Outage("redis://test"),
                   on_signal=lambda _: None, on_first_beat=lambda: None)
    assert hb.beat() is True


def test_metrics_page_shows_recorded_classes_escaped(r: redis.Redis, config: Config) -> None:
    record(r, config)
    web: TestClient = web_client(config)
    page = web.get("/metrics")
    assert page.status_code == 200
    assert 'href="/metrics" aria-current="page"' in page.text
    assert XSS not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    rows = re.findall(r'<tr class="metric">\s*<td>(.*?)</td><td>(\d+)</td><td>(\d+)</td>',
                      page.text)
    assert ("Ok", "3", "0") in rows
    assert ("&lt;script&gt;alert(1)&lt;/script&gt;", "2", "2") in rows
    # The histogram: 26 bars holding the 3 successful runs.
    assert page.text.count('<rect class="bar"') == HISTOGRAM_BUCKETS
    assert sum(int(n) for n in re.findall(r"<title>[^<]*: (\d+)</title>", page.text)) == 3
    for hours in (2, 4, 8, 99):
        assert web.get(f"/metrics?hours={hours}").status_code == 200


def test_api_metrics_and_openapi(r: redis.Redis, config: Config) -> None:
    record(r, config)
    web = web_client(config)
    got = web.get("/api/metrics?hours=4").json()
    assert got["hours"] == 4
    assert len(got["buckets"]) == HISTOGRAM_BUCKETS and got["buckets"][-1] == "slow"
    jobs = {j["class"]: j for j in got["jobs"]}
    assert set(jobs) == {"Ok", XSS}
    assert (jobs["Ok"]["executions"], jobs["Ok"]["failures"]) == (3, 0)
    assert (jobs[XSS]["executions"], jobs[XSS]["failures"], jobs[XSS]["total_ms"]) == (2, 2, 0)
    assert sum(got["histogram"]) == 3 and sum(jobs["Ok"]["histogram"]) == 3
    assert "/api/metrics" in web.get("/api/openapi.json").json()["paths"]
    empty = web_client(config)
    r.flushdb()
    assert empty.get("/api/metrics").json()["jobs"] == []
    assert "No executions recorded" in empty.get("/metrics").text
