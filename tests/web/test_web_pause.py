"""Pausing a queue from the dashboard: a running roadie process stops taking its jobs
within a heartbeat, and takes them again after resume."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import redis
from support.wait import wait_until
from web_support import KEYS, web_client

from roadie.client import Client
from roadie.config import Config
from roadie.job import Job
from roadie.middleware import Hooks
from roadie.registry import Registry
from roadie.server.launcher import Launcher


@pytest.fixture
def launcher(config: Config) -> Iterator[tuple[Launcher, list[str]]]:
    registry = Registry()
    ran: list[str] = []

    class Note(Job, registry=registry, name="Note"):
        def perform(self, text: str) -> None:
            ran.append(text)

    cfg = config.replace(concurrency=2, timeout_s=2.0, heartbeat_interval_s=0.2,
                         queues=(("critical", 1), ("default", 1)))
    launcher = Launcher(cfg, hooks=Hooks(), registry=registry)
    launcher.start()
    yield launcher, ran
    launcher.stop()


def test_paused_queue_is_skipped_until_resumed(r: redis.Redis, config: Config,
                                               launcher: tuple[Launcher, list[str]]) -> None:
    proc, ran = launcher
    web = web_client(config)
    page = web.get("/queues")
    csrf = re.search(r'name="csrf" value="([^"]+)"', web.get("/busy").text)
    assert page.status_code == 200 and csrf is not None
    client = Client(config, hooks=Hooks())
    client.push({"class": "Note", "args": ["warm-up"], "queue": "default"})
    wait_until(lambda: ran == ["warm-up"], message="the process did not run the first job")

    web.post("/queues/default", data={"csrf": csrf.group(1), "action": "pause"})
    wait_until(lambda: proc.state.paused == frozenset({KEYS.queue("default")}),
               message="the heartbeat did not read the paused set")
    # A processor already blocked on queue:default when the pause was read keeps
    # that one wait (at most 2 s), and takes a job pushed meanwhile. So: push a job
    # to default, then one to critical; once the critical one has run, the default
    # one must still be queued (retried a few times for such a pre-pause waiter).
    for attempt in range(10):
        client.push({"class": "Note", "args": [f"held-{attempt}"], "queue": "default"})
        client.push({"class": "Note", "args": [f"other-{attempt}"], "queue": "critical"})
        wait_until(lambda attempt=attempt: f"other-{attempt}" in ran,
                   message="the unpaused queue stopped too")
        if r.llen(KEYS.queue("default")) == 1:
            break
    else:
        raise AssertionError("the paused queue kept being fetched")
    held = f"held-{attempt}"
    assert held not in ran

    web.post("/queues/default", data={"csrf": csrf.group(1), "action": "resume"})
    wait_until(lambda: held in ran, message="the resumed queue was not fetched again")
    assert r.llen(KEYS.queue("default")) == 0 and r.smembers(KEYS.paused) == set()
