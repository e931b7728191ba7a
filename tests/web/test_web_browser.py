"""The dashboard in a real browser: Playwright driving Debian's chromium headless
against ``roadie web`` served on a free localhost port.

Each test loads a page, clicks what a person clicks, then checks Redis and the page.
Each test saves a screenshot of its page: into docs/screenshots/ (which
docs/dashboard.md shows) when ROADIE_SCREENSHOTS=1, else into a temporary folder,
so that an ordinary test run leaves the work tree clean.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
import pytest
import redis
from web_support import KEYS, XSS, failed_payload, seed, serve_web

from roadie.config import Config

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHROMIUM = "/usr/bin/chromium"
DOC_SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
SHOTS = DOC_SHOTS if os.environ.get("ROADIE_SCREENSHOTS") == "1" else Path(
    tempfile.mkdtemp(prefix="roadie-shots-")
)

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason=f"{CHROMIUM} missing (apt-get install chromium; .ci/run installs it)",
)
sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")


@pytest.fixture
def server(redis_url: str, r: redis.Redis) -> Iterator[str]:
    """``roadie web`` in a subprocess; yields its base URL."""
    with serve_web(redis_url) as url:
        yield url


@pytest.fixture
def page(server: str) -> Iterator[Page]:
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"],
        )
        context = browser.new_context(base_url=server, viewport={"width": 1100, "height": 800})
        tab = context.new_page()
        tab.on("dialog", lambda dialog: dialog.accept())
        errors: list[str] = []
        tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        try:
            yield tab
        finally:
            browser.close()
        assert errors == [], errors


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def add_process(r: redis.Redis) -> str:
    ident = "web-1:31337:0a1b2c"
    info = {"hostname": "web-1", "pid": 31337, "tag": "shop", "started_at": time.time() - 7200,
            "queues": ["critical", "default"], "concurrency": 10, "identity": ident,
            "version": "roadie 0.1.0"}
    r.sadd(KEYS.processes, ident)
    r.hset(KEYS.process(ident), mapping={"info": orjson.dumps(info), "busy": 1,
                                         "beat": repr(time.time()), "quiet": "false",
                                         "rss": 81920, "concurrency": 10})
    job = orjson.dumps({"class": "ReportJob", "args": [2026, "monthly"], "jid": "r" * 24,
                        "queue": "default"}).decode()
    r.hset(KEYS.work(ident), "tid-7", orjson.dumps({"queue": "default", "payload": job,
                                                    "run_at": time.time() - 12}))
    return ident


def test_dashboard_live_graph_and_screenshot(page: Page, r: redis.Redis,
                                              config: Config) -> None:
    seed(r, config)
    add_process(r)
    r.set(KEYS.stat("processed"), 1200)
    page.goto("/")
    # The live graph is drawn by the external script after its second poll.
    locator = page.locator("#live[data-polls='2']")
    r.incrby(KEYS.stat("processed"), 25)
    locator.wait_for(timeout=15000)
    assert page.locator("[data-stat='processed']").inner_text() == "1225"
    assert page.locator("#live polyline.processed").get_attribute("points")
    shot(page, "dashboard")


def test_busy_quiet_and_stop(page: Page, r: redis.Redis) -> None:
    ident = add_process(r)
    page.goto("/busy")
    shot(page, "busy")
    assert page.locator("tr.work").inner_text().count("ReportJob") == 1
    page.locator("tr.process button", has_text="Quiet").click()
    page.wait_for_url("**/busy?done=quiet:1")
    assert r.lrange(KEYS.signals(ident), 0, -1) == [b"TSTP"]
    page.locator("button", has_text="Stop all").click()
    page.wait_for_url("**/busy?done=stop:1")
    assert r.lrange(KEYS.signals(ident), 0, -1) == [b"TERM", b"TSTP"]


def test_queues_pause_and_delete(page: Page, r: redis.Redis, config: Config) -> None:
    jobs = seed(r, config)
    page.goto("/queues")
    shot(page, "queues")
    page.locator("button", has_text="Pause").click()
    page.wait_for_url("**/queues?done=pause:1")
    assert r.smembers(KEYS.paused) == {b"default"}
    assert page.locator("span.badge", has_text="paused").count() == 1
    page.goto("/queues/default")
    shot(page, "queue")
    page.locator("tr.job", has_text=jobs["queued"][0]).locator(
        "button", has_text="Delete").click()
    page.wait_for_url("**/queues/default?done=delete:1")
    left = [orjson.loads(x)["jid"] for x in r.lrange(KEYS.queue("default"), 0, -1)]
    assert left == [jobs["queued"][1]]
    assert page.locator("tr.job").count() == 1


def test_retries_retry_kill_and_job_page(page: Page, r: redis.Redis, config: Config) -> None:
    seed(r, config)
    r.zadd(KEYS.retry, {failed_payload("HtmlJob", [XSS], XSS, jid="h" * 24): time.time() + 300})
    page.goto("/retries")
    shot(page, "retries")
    # The <script> in args and message shows as text and never runs.
    assert page.locator("tr.entry", has_text=XSS).count() == 1
    page.locator("tr.entry", has_text="boom 0").locator("a").click()
    page.locator("pre.backtrace").wait_for()
    shot(page, "retry-job")
    assert "line 10, in perform" in page.locator("pre.backtrace").inner_text()
    page.locator("button", has_text="Retry now").click()
    page.wait_for_url("**/retries?done=retry:1")
    assert r.zcard(KEYS.retry) == 2 and r.llen(KEYS.queue("default")) == 3
    row = page.locator("tr.entry", has_text="boom 1")
    row.locator("input[type=checkbox]").check()
    page.locator("#bulk button", has_text="Kill selected").click()
    page.wait_for_url("**/retries?done=kill:1")
    assert r.zcard(KEYS.retry) == 1 and r.zcard(KEYS.dead) == 2


def test_scheduled_and_dead_pages(page: Page, r: redis.Redis, config: Config) -> None:
    seed(r, config)
    page.goto("/scheduled")
    shot(page, "scheduled")
    page.locator("input.select-all").check()
    page.locator("#bulk button", has_text="Enqueue selected").click()
    page.wait_for_url("**/scheduled?done=enqueue:1")
    assert r.zcard(KEYS.schedule) == 0 and r.llen(KEYS.queue("default")) == 3
    page.goto("/dead")
    shot(page, "dead")
    page.locator("form.all button", has_text="Delete all").click()
    page.wait_for_url("**/dead?done=delete:1")
    assert r.zcard(KEYS.dead) == 0
    assert page.locator("td.empty").inner_text() == "Nothing here."


def test_phone_and_dark_theme(page: Page, r: redis.Redis, config: Config) -> None:
    seed(r, config)
    page.set_viewport_size({"width": 390, "height": 844})
    page.emulate_media(color_scheme="dark")
    page.goto("/retries")
    bg = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert bg == "rgb(21, 23, 26)"
    shot(page, "retries-phone-dark")


def test_metrics_page(page: Page, r: redis.Redis) -> None:
    from roadie.server.heartbeat import flush_metrics
    from roadie.server.state import State

    state = State("web-1:31337:0a1b2c")
    for ms in (12, 25, 40, 90, 240, 480):
        state.count(failed=False, job_class="SendWelcomeEmail", ms=ms)
    for ms in (700, 1500):
        state.count(failed=False, job_class="SyncRates", ms=ms)
    state.count(failed=True, job_class="SyncRates")
    pipe = r.pipeline(transaction=True)
    flush_metrics(pipe, KEYS, state.take_metrics(), time.time())
    pipe.execute()

    page.goto("/metrics")
    rows = page.locator("table tbody tr")
    rows.first.wait_for(timeout=10000)
    text = page.locator("table").inner_text()
    assert "SendWelcomeEmail" in text and "SyncRates" in text
    assert page.locator("svg rect").count() > 0
    shot(page, "metrics")


def test_periodic_page(page: Page, r: redis.Redis, config: Config) -> None:
    import threading

    from roadie.cron import make_schedule
    from roadie.middleware import Hooks
    from roadie.registry import Registry
    from roadie.server.outage import Outage
    from roadie.server.periodic import PeriodicScheduler

    nightly = make_schedule("0 3 * * *", "app.Report", [1], name="nightly", tz="Europe/Paris")
    rates = make_schedule("*/5 * * * *", "app.SyncRates", ["EUR"], name="rates", queue="rates")
    s = PeriodicScheduler(r, config, KEYS, Hooks(), Registry(), Outage(config.redis_url),
                          threading.Event(), [nightly, rates], identity="web-1:42:abc")
    now = time.time()
    s.register(now=now)
    last = rates.latest_at_or_before(now)
    assert last is not None and s.push(rates, last)[0]

    page.goto("/periodic")
    rows = page.locator("tr.periodic")
    rows.first.wait_for(timeout=10000)
    assert rows.count() == 2
    assert "Europe/Paris" in rows.nth(0).inner_text()
    assert "rates" in rows.nth(1).inner_text()
    shot(page, "periodic")
