"""job.py: what perform_async / perform_in / perform_at / perform_bulk hand to the client.

The client is replaced by a recorder: these tests check the items a Job builds, not
how they reach Redis (tests/integration does that against a real Redis).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import roadie.current
from roadie.job import Job, job
from roadie.registry import Registry

REG = Registry()


class Recorder:
    def __init__(self) -> None:
        self.pushed: list[dict[str, Any]] = []
        self.bulk: list[tuple[list[dict[str, Any]], int]] = []

    def push(self, item: dict[str, Any]) -> str:
        self.pushed.append(item)
        return f"jid-{len(self.pushed)}"

    def push_bulk(self, items: list[dict[str, Any]], batch_size: int = 1000) -> list[str | None]:
        self.bulk.append((items, batch_size))
        return [f"jid-{i}" for i in range(len(items))]


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    recorder = Recorder()
    with roadie.current.using(recorder):  # type: ignore[arg-type]
        yield recorder


class Mail(Job, registry=REG, name="Mail", queue="mail", retry=3):
    def perform(self, user_id: int, kind: str = "welcome") -> None: ...


@job(registry=REG, name="notify", queue="low")
def notify(user_id: int) -> None: ...


def test_perform_async(client: Recorder) -> None:
    assert Mail.perform_async(42, "hello") == "jid-1"
    assert client.pushed == [
        {"queue": "mail", "retry": 3, "args": [42, "hello"], "class": "Mail"}
    ]


def test_set_then_perform_async(client: Recorder) -> None:
    Mail.set(queue="critical", retry=0).perform_async(1)
    assert client.pushed == [{"queue": "critical", "retry": 0, "args": [1], "class": "Mail"}]


def test_perform_in_a_timedelta(client: Recorder) -> None:
    before = time.time()
    Mail.perform_in(timedelta(hours=1), 7)
    after = time.time()
    item = client.pushed[0]
    assert before + 3600 <= item["at"] <= after + 3600
    assert isinstance(item["at"], float)
    assert item["args"] == [7]


def test_perform_in_seconds(client: Recorder) -> None:
    before = time.time()
    Mail.perform_in(90, 7)
    assert before + 90 <= client.pushed[0]["at"] <= time.time() + 90


def test_perform_in_zero_or_negative_is_immediate(client: Recorder) -> None:
    Mail.perform_in(0, 1)
    Mail.perform_in(timedelta(seconds=-5), 2)
    assert ["at" in item for item in client.pushed] == [False, False]


def test_perform_at_a_future_datetime(client: Recorder) -> None:
    when = datetime.now(UTC) + timedelta(days=1)
    Mail.perform_at(when, 1)
    assert client.pushed[0]["at"] == when.timestamp()


def test_perform_at_a_past_time_drops_at(client: Recorder) -> None:
    # Sidekiq's rule: a time <= now is pushed at once, without "at".
    Mail.perform_at(datetime(2001, 1, 1, tzinfo=UTC), 1)
    Mail.perform_at(time.time() - 10, 2)
    assert all("at" not in item for item in client.pushed)


def test_perform_at_epoch_seconds(client: Recorder) -> None:
    at = time.time() + 600
    Mail.perform_at(at, 1)
    assert client.pushed[0]["at"] == at


def test_perform_at_refuses_a_string(client: Recorder) -> None:
    with pytest.raises(TypeError):
        Mail.perform_at("tomorrow", 1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Mail.perform_in("1h", 1)  # type: ignore[arg-type]
    assert client.pushed == []


def test_perform_bulk(client: Recorder) -> None:
    jids = Mail.perform_bulk([[1], [2, "x"]], batch_size=50)
    assert jids == ["jid-0", "jid-1"]
    items, batch_size = client.bulk[0]
    assert batch_size == 50
    assert items == [
        {"queue": "mail", "retry": 3, "args": [1], "class": "Mail"},
        {"queue": "mail", "retry": 3, "args": [2, "x"], "class": "Mail"},
    ]


def test_items_do_not_share_option_dicts(client: Recorder) -> None:
    Mail.perform_async(1)
    client.pushed[0]["queue"] = "changed by middleware"
    Mail.perform_async(2)
    assert client.pushed[1]["queue"] == "mail"
    assert Mail.options["queue"] == "mail"


def test_job_function_pushes_like_a_job(client: Recorder) -> None:
    notify.perform_async(5)
    notify.set(queue="high").perform_async(6)
    notify.perform_in(60, 7)
    notify.perform_at(time.time() + 60, 8)
    notify.perform_bulk([[9]])
    assert [i["queue"] for i in client.pushed] == ["low", "high", "low", "low"]
    assert [i["args"] for i in client.pushed] == [[5], [6], [7], [8]]
    assert all(i["class"] == "notify" for i in client.pushed)
    assert ["at" in i for i in client.pushed] == [False, False, True, True]
    assert client.bulk[0][0] == [{"queue": "low", "args": [9], "class": "notify"}]


def test_perform_at_a_small_number_is_seconds_from_now_as_in_sidekiq(client: Recorder) -> None:
    before = time.time()
    Mail.perform_at(300, 1)
    after = time.time()
    assert before + 300 <= client.pushed[0]["at"] <= after + 300
    Mail.perform_at(0, 2)  # now: pushed at once
    assert "at" not in client.pushed[1]
