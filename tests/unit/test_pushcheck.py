"""pushcheck.py: what a time given to perform_in / perform_at means (seconds, a
timedelta, a datetime, epoch seconds or, below 1e9, seconds from now, as in Sidekiq)
and which are refused (no Redis: the client is a Recorder)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from roadie.pushcheck import to_epoch, to_seconds
from unit.unit_support import Mail, Recorder


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


def test_perform_at_a_future_datetime(client: Recorder) -> None:
    when = datetime.now(UTC) + timedelta(days=1)
    Mail.perform_at(when, 1)
    assert client.pushed[0]["at"] == when.timestamp()


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


def test_perform_at_a_small_number_is_seconds_from_now_as_in_sidekiq(client: Recorder) -> None:
    before = time.time()
    Mail.perform_at(300, 1)
    after = time.time()
    assert before + 300 <= client.pushed[0]["at"] <= after + 300
    Mail.perform_at(0, 2)  # now: pushed at once
    assert "at" not in client.pushed[1]


def test_to_seconds() -> None:
    assert to_seconds(timedelta(minutes=2, milliseconds=500)) == 120.5
    assert to_seconds(30) == 30.0
    assert isinstance(to_seconds(30), float)
    assert to_seconds(1.25) == 1.25


def test_to_epoch() -> None:
    when = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    assert to_epoch(when) == when.timestamp() == 1795867200.0
    plus_two = datetime(2026, 11, 28, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    assert to_epoch(plus_two) == 1795867200.0
    assert to_epoch(1795867200) == 1795867200.0
    assert isinstance(to_epoch(1795867200), float)
    assert to_epoch(1795867200.5) == 1795867200.5


@pytest.mark.parametrize("bad", ["10", "2026-11-28", None, True, [1]])
def test_time_helpers_refuse_other_types(bad: Any) -> None:
    with pytest.raises(TypeError, match="must be seconds or a timedelta"):
        to_seconds(bad)
    with pytest.raises(TypeError, match="must be a datetime or epoch seconds"):
        to_epoch(bad)
