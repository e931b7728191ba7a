"""server/outcome.py: what a job's run leads to, written to Redis (through
JobRunner.process()): a success acknowledged, and what a failed attempt writes
(SIDEKIQ-WIRE.md section 7): retry, dead or discard, and the hooks called."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import redis
from integration_support import INFLIGHT, LoopThreads, loads, make_processor

from roadie.client import Client
from roadie.config import Config
from roadie.job import Job, RetryDecision
from roadie.middleware import Hooks
from roadie.payload import Payload
from roadie.registry import Registry
from roadie.retry import decompress_backtrace
from roadie.server.processor import Processor


class Boom(Exception):
    pass


@pytest.fixture
def deaths(hooks: Hooks) -> list[tuple[Payload, BaseException]]:
    seen: list[tuple[Payload, BaseException]] = []
    hooks.death_handlers.append(lambda payload, exc: seen.append((payload, exc)))
    return seen


@pytest.fixture
def config(config: Config) -> Config:
    return config.replace(queues=(("default", 0), ("other", 0)))


@pytest.fixture
def proc(r: redis.Redis, config: Config, registry: Registry, hooks: Hooks) -> Iterator[Processor]:
    loop_threads = LoopThreads()
    yield make_processor(r, config, registry, hooks=hooks, loop_thread=loop_threads)
    loop_threads.stop()


def run_one(proc: Processor) -> None:
    [uow] = proc.fetcher.fetch(1)
    proc.runner.process(uow)


def only(r: redis.Redis, zset: str) -> tuple[dict[str, Any], float]:
    [(raw, score)] = r.zrange(zset, 0, -1, withscores=True)
    return loads(raw), score


def assert_whole_seconds_between(delay: float, low: int, high: int) -> None:
    assert low <= round(delay) <= high
    assert abs(delay - round(delay)) < 1e-3, delay


def test_success_acks_and_counts(
    r: redis.Redis, client: Client, registry: Registry, proc: Processor
) -> None:
    ran: list[tuple[Any, ...]] = []

    class Ok(Job, registry=registry, name="Ok"):
        def perform(self, *args: Any) -> None:
            ran.append(args)

    Ok.perform_async(1, "two")
    run_one(proc)

    assert ran == [(1, "two")]
    assert r.exists(INFLIGHT, "retry", "dead", "queue:default") == 0
    assert proc.state.take_counts() == (1, 0)
    assert proc.state.busy == 0


def test_first_and_second_failure_write_sidekiq_retry_fields(
    r: redis.Redis, client: Client, registry: Registry, proc: Processor
) -> None:
    class Fail(Job, registry=registry, name="Fail", retry_queue="other", backtrace=3):
        def perform(self, n: int) -> None:
            raise Boom(f"boom {n}")

    jid = Fail.perform_async(7)
    t0 = time.time()
    run_one(proc)
    t1 = time.time()

    payload, score = only(r, "retry")
    assert r.exists(INFLIGHT, "dead", "queue:default") == 0
    assert payload["jid"] == jid and payload["args"] == [7]
    assert payload["error_message"] == "boom 7"
    assert payload["error_class"] == f"{Boom.__module__}.Boom"
    assert payload["retry_count"] == 0
    assert isinstance(payload["failed_at"], float) and t0 <= payload["failed_at"] <= t1
    assert "retried_at" not in payload
    assert payload["queue"] == "other"
    assert_whole_seconds_between(score - payload["failed_at"], 15, 24)  # 0**4 + 15 + rand(10)
    lines = decompress_backtrace(payload["error_backtrace"])
    assert len(lines) == 3
    assert lines[0].startswith(f"{__file__}:") and lines[0].endswith(":in `perform'")
    assert proc.state.take_counts() == (1, 1)

    # The poller would put it back on its (retry) queue; run it again.
    r.zrem("retry", r.zrange("retry", 0, 0)[0])
    r.lpush("queue:other", orjson.dumps(payload))
    t2 = time.time()
    run_one(proc)
    t3 = time.time()

    again, score2 = only(r, "retry")
    assert again["retry_count"] == 1
    assert again["failed_at"] == payload["failed_at"]
    assert isinstance(again["retried_at"], float) and t2 <= again["retried_at"] <= t3
    assert again["queue"] == "other"
    assert_whole_seconds_between(score2 - again["retried_at"], 16, 35)  # 1 + 15 + rand(20)
    assert r.exists(INFLIGHT, "queue:other") == 0


def test_backtrace_true_keeps_every_line(
    r: redis.Redis, client: Client, registry: Registry, proc: Processor
) -> None:
    class Deep(Job, registry=registry, name="Deep", backtrace=True):
        def perform(self) -> None:
            self.helper()

        def helper(self) -> None:
            raise Boom("deep")

    Deep.perform_async()
    run_one(proc)

    payload, _ = only(r, "retry")
    lines = decompress_backtrace(payload["error_backtrace"])
    assert lines[0].endswith(":in `helper'") and lines[1].endswith(":in `perform'")
    assert len(lines) > 3
    assert any("runner.py" in line for line in lines)


def test_no_backtrace_option_writes_no_backtrace(
    r: redis.Redis, client: Client, registry: Registry, proc: Processor
) -> None:
    class Plain(Job, registry=registry, name="Plain"):
        def perform(self) -> None:
            raise Boom("x")

    Plain.perform_async()
    run_one(proc)

    payload, _ = only(r, "retry")
    assert "error_backtrace" not in payload


def test_retry_zero_goes_straight_to_dead(
    r: redis.Redis, client: Client, registry: Registry, proc: Processor,
    deaths: list[tuple[Payload, BaseException]],
) -> None:
    exhausted: list[str] = []

    class Once(Job, registry=registry, name="Once", retry=0):
        def perform(self) -> None:
            raise Boom("once")

        @classmethod
        def retries_exhausted(cls, payload: Payload, exc: BaseException) -> str | None:
            exhausted.append(payload["jid"])
            return None

    jid = Once.perform_async()
    t0 = time.time()
    run_one(proc)

    payload, score = only(r, "dead")
    assert r.exists("retry", INFLIGHT) == 0
    assert payload["retry"] == 0 and payload["retry_count"] == 0
    assert payload["error_message"] == "once" and "failed_at" in payload
    assert t0 <= score <= time.time()
    assert exhausted == [jid]
    assert [(p["jid"], str(e)) for p, e in deaths] == [(jid, "once")]


def test_retry_false_leaves_nothing_but_calls_death_handlers(
    r: redis.Redis, client: Client, registry: Registry, proc: Processor,
    deaths: list[tuple[Payload, BaseException]],
) -> None:
    class Never(Job, registry=registry, name="Never", retry=False):
        def perform(self) -> None:
            raise Boom("never")

    jid = Never.perform_async()
    run_one(proc)

    assert r.exists("retry", "dead", INFLIGHT, "queue:default") == 0
    assert [(p["jid"], type(e)) for p, e in deaths] == [(jid, Boom)]


def test_exhaustion_buries_and_calls_hooks(
    r: redis.Redis, client: Client, registry: Registry, proc: Processor,
    deaths: list[tuple[Payload, BaseException]],
) -> None:
    exhausted: list[tuple[int, str]] = []

    class Twice(Job, registry=registry, name="Twice", retry=2):
        def perform(self) -> None:
            raise Boom("again")

        @classmethod
        def retries_exhausted(cls, payload: Payload, exc: BaseException) -> str | None:
            exhausted.append((payload["retry_count"], str(exc)))
            return None

    # Already failed twice: the retry counts 0 and 1 are used up.
    Twice.set(retry_count=1, failed_at=1.5).perform_async()
    run_one(proc)

    payload, _ = only(r, "dead")
    assert r.exists("retry") == 0
    assert payload["retry_count"] == 2 and payload["failed_at"] == 1.5
    assert "retried_at" in payload
    assert exhausted == [(2, "again")]
    assert len(deaths) == 1 and deaths[0][0]["retry_count"] == 2


def test_retry_true_uses_config_max_retries(
    r: redis.Redis, config: Config, client: Client, registry: Registry, hooks: Hooks
) -> None:
    class Fail(Job, registry=registry, name="Fail"):
        def perform(self) -> None:
            raise Boom("x")

    proc = make_processor(r, config.replace(max_retries=1), registry, hooks=hooks)
    Fail.perform_async()
    run_one(proc)
    assert only(r, "retry")[0]["retry_count"] == 0

    raw = r.zrange("retry", 0, 0)[0]
    r.zrem("retry", raw)
    r.lpush("queue:default", raw)
    run_one(proc)

    assert r.exists("retry") == 0
    assert only(r, "dead")[0]["retry_count"] == 1


def test_dead_false_skips_the_dead_set(
    r: redis.Redis, client: Client, registry: Registry, proc: Processor,
    deaths: list[tuple[Payload, BaseException]],
) -> None:
    class NoMorgue(Job, registry=registry, name="NoMorgue", retry=0, dead=False):
        def perform(self) -> None:
            raise Boom("gone")

    NoMorgue.perform_async()
    run_one(proc)

    assert r.exists("retry", "dead", INFLIGHT) == 0
    assert len(deaths) == 1


def test_retries_exhausted_discard_skips_the_dead_set(
    r: redis.Redis, client: Client, registry: Registry, proc: Processor,
    deaths: list[tuple[Payload, BaseException]],
) -> None:
    class Discard(Job, registry=registry, name="Discard", retry=0):
        def perform(self) -> None:
            raise Boom("x")

        @classmethod
        def retries_exhausted(cls, payload: Payload, exc: BaseException) -> str | None:
            return "discard"

    Discard.perform_async()
    run_one(proc)

    assert r.exists("retry", "dead", INFLIGHT) == 0
    assert len(deaths) == 1


def _retry_in_job(registry: Registry, decision: RetryDecision, calls: list[Any]) -> type[Job]:
    class Custom(Job, registry=registry, name="Custom"):
        def perform(self) -> None:
            raise Boom("custom")

        @classmethod
        def retry_in(cls, count: int, exc: BaseException, payload: Payload) -> RetryDecision:
            calls.append((count, str(exc), payload["class"]))
            return decision

    return Custom


def test_retry_in_seconds_replaces_the_backoff(
    r: redis.Redis, client: Client, registry: Registry, proc: Processor
) -> None:
    calls: list[Any] = []
    custom = _retry_in_job(registry, 100, calls)

    custom.perform_async()
    run_one(proc)

    payload, score = only(r, "retry")
    assert calls == [(0, "custom", "Custom")]
    assert_whole_seconds_between(score - payload["failed_at"], 100, 109)  # + rand(10)


def test_retry_in_kill_buries_at_once(
    r: redis.Redis, client: Client, registry: Registry, proc: Processor,
    deaths: list[tuple[Payload, BaseException]],
) -> None:
    custom = _retry_in_job(registry, "kill", [])

    custom.perform_async()
    run_one(proc)

    assert r.exists("retry", INFLIGHT) == 0
    assert only(r, "dead")[0]["error_message"] == "custom"
    assert len(deaths) == 1


def test_retry_in_discard_drops_the_job(
    r: redis.Redis, client: Client, registry: Registry, proc: Processor,
    deaths: list[tuple[Payload, BaseException]],
) -> None:
    custom = _retry_in_job(registry, "discard", [])

    custom.perform_async()
    run_one(proc)

    assert r.exists("retry", "dead", INFLIGHT, "queue:default") == 0
    # roadie follows Sidekiq 6.5-7.x here: a discard is not a death.
    assert deaths == []


def test_retry_in_that_raises_falls_back_to_the_default(
    r: redis.Redis, client: Client, registry: Registry, proc: Processor
) -> None:
    class Broken(Job, registry=registry, name="Broken"):
        def perform(self) -> None:
            raise Boom("x")

        @classmethod
        def retry_in(cls, count: int, exc: BaseException, payload: Payload) -> RetryDecision:
            raise RuntimeError("bug in retry_in")

    Broken.perform_async()
    run_one(proc)

    payload, score = only(r, "retry")
    assert_whole_seconds_between(score - payload["failed_at"], 15, 24)
