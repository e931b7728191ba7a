"""Fuzzing periodic-job definitions: cron strings, time zones, config tables.

``make_schedule`` and ``from_table`` must give a ``Schedule`` that can say when it
fires next, or a ``ConfigError`` naming the periodic job; nothing else.
"""

from __future__ import annotations

import math
from typing import Any

from fuzz_support import FUZZ, json_values
from hypothesis import given
from hypothesis import strategies as st

from roadie.cron import TABLE_KEYS, Schedule, from_table, make_schedule
from roadie.errors import ConfigError

NOW = 1_795_869_053.0  # a fixed instant: results do not depend on the clock

cron_field = st.one_of(
    st.sampled_from(["*", "*/5", "0", "59", "60", "1-5", "5-1", "1,2,3", "*/0", "L", "?",
                     "MON", "mon-fri", "JAN", "1W", "5#3", "-1", "99999999999999999999",
                     "", "**", "1-", ",", "*/-1", "H"]),
    st.integers(min_value=-5, max_value=100).map(str),
    st.text(alphabet="0123456789*/-,LW#?", min_size=1, max_size=6),
)
cron_strings = st.one_of(
    st.lists(cron_field, min_size=1, max_size=7).map(" ".join),
    st.text(max_size=40),
    st.sampled_from(["@daily", "@hourly", "@reboot", "@yearly", "@every 5m", "0 0 30 2 *",
                     "0 0 31 4 *", "* * * * * * *"]),
)


def check_schedule(make: Any) -> Schedule | None:
    try:
        schedule = make()
    except ConfigError as exc:
        message = str(exc)
        assert message.startswith(("periodic job", "cron", "test")), message
        return None
    assert isinstance(schedule, Schedule)
    nxt = schedule.next_after(NOW)
    assert math.isfinite(nxt) and nxt > NOW
    before = schedule.latest_at_or_before(NOW)
    assert before is None or before <= NOW
    return schedule


@FUZZ
@given(cron_strings)
def test_make_schedule_on_arbitrary_cron_strings(cron: str) -> None:
    check_schedule(lambda: make_schedule(cron, "Fuzz::Job"))


@FUZZ
@given(st.one_of(st.text(max_size=30),
                 st.sampled_from(["UTC", "Europe/Paris", "America/St_Johns", "Etc/GMT+12",
                                  "../etc/passwd", "/UTC", "Mars/Olympus", "", "utc",
                                  "Asia/Kathmandu", "\x00"])))
def test_make_schedule_on_arbitrary_time_zones(tz: str) -> None:
    check_schedule(lambda: make_schedule("30 2 * * *", "Fuzz::Job", tz=tz))


@FUZZ
@given(st.dictionaries(st.sampled_from([*TABLE_KEYS, "bad"]),
                       st.one_of(json_values, cron_strings), max_size=6))
def test_from_table_on_arbitrary_tables(table: dict[str, Any]) -> None:
    check_schedule(lambda: from_table(table, "test.toml"))


def test_a_schedule_that_never_fires_is_refused() -> None:
    for cron in ("0 0 30 2 *", "0 0 31 4 *"):
        try:
            make_schedule(cron, "Fuzz::Job")
        except ConfigError as exc:
            assert "never fires" in str(exc) or "not a valid cron" in str(exc)
        else:
            raise AssertionError(f"{cron!r} was accepted")
