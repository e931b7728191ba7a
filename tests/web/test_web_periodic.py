"""The Periodic page and ``/api/periodic``: schedules registered in real Redis by the
periodic scheduler, as a running ``roadie run`` process registers them."""

from __future__ import annotations

import threading
import time

import redis
from web_support import KEYS, XSS, web_client

from roadie.config import Config
from roadie.cron import make_schedule
from roadie.middleware import Hooks
from roadie.registry import Registry
from roadie.server.outage import Outage
from roadie.server.periodic import PeriodicScheduler

NIGHTLY = make_schedule("0 3 * * *", "app.Report", [1], name="nightly", tz="Europe/Paris")
RATES = make_schedule("*/5 * * * *", "app.SyncRates", ["EUR"], name="rates", queue="rates")


def register(r: redis.Redis, config: Config, now: float) -> PeriodicScheduler:
    s = PeriodicScheduler(r, config, KEYS, Hooks(), Registry(), Outage(config.redis_url),
                          threading.Event(), [NIGHTLY, RATES], identity="web-1:42:abc")
    s.register(now=now)
    return s


def test_periodic_page_and_api(r: redis.Redis, config: Config) -> None:
    now = time.time()
    s = register(r, config, now)
    last = NIGHTLY.latest_at_or_before(now)
    assert last is not None
    assert s.push(NIGHTLY, last)[0]
    web = web_client(config)

    page = web.get("/periodic")
    assert page.status_code == 200
    rows = page.text.split('<tr class="periodic">')[1:]
    assert [row.split("<td>")[1].split("</td>")[0] for row in rows] == ["nightly", "rates"]
    assert "<code>0 3 * * *</code>" in rows[0] and "Europe/Paris" in rows[0]
    assert "app.Report" in rows[0] and "ago</time>" in rows[0] and "active" in rows[0]
    assert 'href="/queues/rates"' in rows[1] and "never" in rows[1]
    assert 'href="/periodic" aria-current="page"' in page.text

    api = web.get("/api/periodic").json()
    assert [e["name"] for e in api] == ["nightly", "rates"]
    nightly, rates = api
    assert nightly["cron"] == "0 3 * * *" and nightly["tz"] == "Europe/Paris"
    assert nightly["class"] == "app.Report" and nightly["queue"] == "default"
    assert nightly["last_run_at"] == last and nightly["state"] == "active"
    assert nightly["next_run_at"] > now
    assert rates["queue"] == "rates" and rates["last_run_at"] is None
    assert rates["next_run_at"] > now
    assert "/api/periodic" in web.get("/api/openapi.json").json()["paths"]


def test_periodic_page_empty_and_escaped(r: redis.Redis, config: Config) -> None:
    web = web_client(config)
    assert "No periodic jobs." in web.get("/periodic").text
    assert web.get("/api/periodic").json() == []
    evil = make_schedule("* * * * *", XSS, name=XSS)
    PeriodicScheduler(r, config, KEYS, Hooks(), Registry(), Outage(config.redis_url),
                      threading.Event(), [evil]).register()
    text = web.get("/periodic").text
    assert XSS not in text and "&lt;script&gt;" in text
