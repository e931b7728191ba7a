"""roadie/pushcheck.py through every way to push: a time no job can wait for (or a
naive datetime) and arguments that do not fit ``perform`` are refused, and nothing is
written."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from integration_support import run_aio

import roadie
import roadie.client
import roadie.testing
from roadie import aio
from roadie.client import Client
from roadie.job import Job


# --- times ------------------------------------------------------------------------
class Later(Job, name="push_checks.Later"):
    def perform(self, n: int) -> None: ...


INF, NAN = float("inf"), float("nan")


FAR = datetime(9999, 12, 31, tzinfo=UTC)


ABSURD_TIMES: dict[str, Callable[[], Any]] = {
    "perform_in(inf)": lambda: Later.perform_in(INF, 1),
    "perform_in(nan)": lambda: Later.perform_in(NAN, 1),
    "perform_in(-inf)": lambda: Later.perform_in(-INF, 1),
    "perform_in(timedelta.max)": lambda: Later.perform_in(timedelta.max, 1),
    "perform_in(101 years)": lambda: Later.perform_in(101 * 365 * 86400, 1),
    "perform_at(1e15)": lambda: Later.perform_at(1e15, 1),
    "perform_at(nan)": lambda: Later.perform_at(NAN, 1),
    "perform_at(inf)": lambda: Later.perform_at(INF, 1),
    "perform_at(10**400)": lambda: Later.perform_at(10**400, 1),
    "perform_at(year 9999)": lambda: Later.perform_at(FAR, 1),
    "set().perform_in(inf)": lambda: Later.set(queue="low").perform_in(INF, 1),
    "set().perform_at(1e15)": lambda: Later.set(queue="low").perform_at(1e15, 1),
    "roadie.push(at=inf)": lambda: roadie.push("Later", [1], at=INF),
    "roadie.push(at=nan)": lambda: roadie.push("Later", [1], at=NAN),
    "Client.push(at=1e15)": lambda: roadie.client.get_client().push(
        {"class": "Later", "args": [1], "at": 1e15}),
    "aio.perform_in(inf)": lambda: run_aio(lambda: aio.perform_in(Later, INF, 1)),
    "aio.perform_at(nan)": lambda: run_aio(lambda: aio.perform_at(Later, NAN, 1)),
    "aio.perform_at(1e15)": lambda: run_aio(lambda: aio.perform_at(Later, 1e15, 1)),
    "aio.push(at=inf)": lambda: run_aio(lambda: aio.push("Later", [1], at=INF)),
}


@pytest.mark.parametrize("call", ABSURD_TIMES.values(), ids=ABSURD_TIMES.keys())
def test_a_time_no_job_can_wait_for_is_refused_and_nothing_is_written(
    r: redis.Redis, client: Client, call: Callable[[], Any]
) -> None:
    with pytest.raises(ValueError, match=r"Later.*is not a (time|delay) a job can be "
                       r"scheduled (for|with).* at most 100 years"):
        call()
    assert r.keys("*") == []


def test_a_time_in_milliseconds_is_refused_with_a_hint(r: redis.Redis, client: Client) -> None:
    with pytest.raises(ValueError, match=r"looks like milliseconds: divide by 1000"):
        Later.perform_at(time.time() * 1000 + 60_000, 1)
    assert r.keys("*") == []


def test_times_in_the_past_and_sidekiqs_relative_numbers_still_work(
    r: redis.Redis, client: Client
) -> None:
    Later.perform_in(-1e300, 1)  # any delay of zero or less: at once
    Later.perform_at(datetime(1, 1, 1, tzinfo=UTC), 2)
    assert r.llen("queue:default") == 2 and r.zcard("schedule") == 0
    before = time.time()
    Later.perform_at(999_999_999, 3)  # below 1e9: seconds from now (31.7 years)
    [(_, score)] = r.zrange("schedule", 0, -1, withscores=True)
    assert before + 999_999_999 <= score <= time.time() + 999_999_999


def test_a_naive_datetime_is_refused_and_nothing_is_written(
    r: redis.Redis, client: Client
) -> None:
    naive = datetime.now() + timedelta(hours=1)
    for call in (lambda: Later.perform_at(naive, 1),
                 lambda: run_aio(lambda: aio.perform_at(Later, naive, 1))):
        with pytest.raises(ValueError, match=r"Later.perform_at: .* is a naive datetime "
                           r"\(no tzinfo\).*datetime.now\(timezone.utc\)"):
            call()
    assert r.keys("*") == []
    Later.perform_at(naive.astimezone(), 1)  # the fix the message gives
    assert r.zcard("schedule") == 1


# --- arguments --------------------------------------------------------------------
class Two(Job, name="push_checks.Two"):
    def perform(self, a: int, b: str = "x") -> None: ...


class KeywordOnly(Job, name="push_checks.KeywordOnly"):
    def perform(self, a: int, *, flag: bool) -> None: ...


class AnyArgs(Job, name="push_checks.AnyArgs"):
    def perform(self, *args: Any) -> None: ...


@roadie.job(name="push_checks.one_arg")
def one_arg(n: int) -> None: ...


def test_arguments_that_do_not_fit_perform_are_refused_and_nothing_is_written(
    r: redis.Redis, client: Client
) -> None:
    signature = r"Two: perform\(a, b='x'\) cannot take the arguments "
    refusals: list[tuple[Callable[[], Any], str]] = [
        (lambda: Two.perform_async(), signature + r"\[\] \(0 given\): missing a required "
         r"argument: 'a'\. Nothing was pushed"),
        (lambda: Two.perform_async(1, "y", 3), signature + r"\[1, 'y', 3\] \(3 given\): too "
         "many positional arguments"),
        (lambda: Two.perform_async(a=1), r"Two: got keyword arguments 'a'; job arguments "  # type: ignore[arg-type]
         "are positional only"),
        (lambda: Two.set(queue="low").perform_in(60, 1, 2, 3), signature),
        (lambda: Two.perform_at(time.time() + 60), signature),
        (lambda: Two.perform_bulk([[1], [1, "y"], [1, "y", 3]]), signature),
        (lambda: Two.perform_bulk([1, 2]), r"Two.perform_bulk: args_list holds one argument "  # type: ignore[list-item]
         "list per job; its item 0 is 1, not a list"),
        (lambda: KeywordOnly.perform_async(1), r"KeywordOnly: perform\(a, \*, flag\) cannot "
         "take the arguments .*missing a required argument: 'flag'"),
        (lambda: one_arg.perform_async(), r"one_arg: perform\(n\) cannot take"),
        (lambda: run_aio(lambda: aio.perform_async(Two)), signature),
        (lambda: run_aio(lambda: aio.perform_bulk(Two, [[1], []])), signature),
        (lambda: run_aio(lambda: aio.perform_async(Two, b="y")), "keyword arguments 'b'"),  # type: ignore[arg-type]
    ]
    for call, message in refusals:
        with pytest.raises(TypeError, match=message):
            call()
    assert r.keys("*") == []

    # What fits is pushed; a job pushed by name is not checked (its class may live
    # in another codebase).
    Two.perform_async(1)
    Two.perform_async(1, "y")
    AnyArgs.perform_async(1, 2, 3, 4)
    one_arg.perform_async(5)
    roadie.push("Two", [1, 2, 3, 4])
    run_aio(lambda: aio.perform_async(Two, 1))
    assert r.llen("queue:default") == 6

    # A test in fake or inline mode sees the same refusal as production.
    for mode in (roadie.testing.fake, roadie.testing.inline):
        with mode(), pytest.raises(TypeError, match=signature):
            Two.perform_async(1, "y", 3)
