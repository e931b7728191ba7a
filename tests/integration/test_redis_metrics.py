"""Execution metrics (SIDEKIQ-WIRE.md section 11): a Processor counts, the Heartbeat
flushes in Sidekiq 7's format, ``roadie.api.Metrics`` reads them back."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from integration_support import IDENTITY, LoopThreads, make_processor

from roadie.api import Metrics
from roadie.client import Client
from roadie.config import Config
from roadie.job import Job
from roadie.keys import HISTOGRAM_BUCKETS, METRICS_TTL_S, Keys
from roadie.middleware import Hooks
from roadie.registry import Registry
from roadie.server.heartbeat import Heartbeat, flush_metrics
from roadie.server.outage import Outage
from roadie.server.processor import Processor
from roadie.server.state import State

WRAPPER = "ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper"
GET_ALL = [w for i in range(HISTOGRAM_BUCKETS) for w in ("GET", "u16", f"#{i}")]


@pytest.fixture
def registry() -> Registry:
    reg = Registry()

    class Ok(Job, registry=reg, name="Ok"):
        def perform(self, *args: Any) -> None:
            pass

    class Boom(Job, registry=reg, name="Boom"):
        def perform(self, *args: Any) -> None:
            raise ValueError("boom")

    class Mailer(Job, registry=reg, name="Mailer"):
        def perform(self, *args: Any) -> None:
            pass

    return reg


@pytest.fixture
def proc(r: redis.Redis, config: Config, registry: Registry) -> Iterator[Processor]:
    loop_threads = LoopThreads()
    yield make_processor(r, config, registry, loop_thread=loop_threads)
    loop_threads.stop()


def heartbeat(r: redis.Redis, config: Config, state: State) -> Heartbeat:
    return Heartbeat(r, config, Keys(config.namespace), state, Outage("redis://test"),
                     on_signal=lambda _: None, on_first_beat=lambda: None)


def run_all(proc: Processor) -> None:
    while True:
        got = proc.fetcher.fetch(1)
        if not got:
            return
        proc.runner.process(got[0])


def minute_keys(t0: float, t1: float) -> tuple[set[str], set[datetime]]:
    """The ``j|`` keys (and minutes) a flush between t0 and t1 may have written."""
    minutes = {datetime.fromtimestamp(t, UTC).replace(second=0, microsecond=0)
               for t in (t0, t1)}
    return {Keys().metrics(m) for m in minutes}, minutes


def matching(r: redis.Redis, pattern: str) -> list[str]:
    return sorted(k.decode() if isinstance(k, bytes) else str(k) for k in r.keys(pattern))


def fields(r: redis.Redis, key: str) -> dict[str, int]:
    return {k.decode(): int(v) for k, v in r.hgetall(key).items()}  # type: ignore[union-attr]


def histogram(r: redis.Redis, key: str) -> list[int]:
    return [int(n) for n in r.execute_command("BITFIELD", key, *GET_ALL)]


def test_keys_use_sidekiq_7_names() -> None:
    at = datetime(2024, 2, 4, 8, 3, 59, tzinfo=UTC)
    assert Keys().metrics(at) == "j|20240204|8:3"
    assert Keys().metrics_histogram("Foo::Bar", at) == "Foo::Bar-04-08:3"
    assert Keys("ns").metrics(at) == "ns:j|20240204|8:3"


def test_processor_counts_and_heartbeat_flushes_in_sidekiq_7_format(
    r: redis.Redis, config: Config, proc: Processor
) -> None:
    client = Client(config, hooks=Hooks())
    for i in range(3):
        client.push({"class": "Ok", "args": [i]})
    client.push({"class": "Boom", "args": [], "retry": False})
    client.push({"class": WRAPPER, "wrapped": "Mailer",
                 "args": [{"job_class": "Mailer", "arguments": [1]}]})
    run_all(proc)

    t0 = time.time()
    assert heartbeat(r, config, proc.state).beat() is True
    t1 = time.time()

    candidates, minutes = minute_keys(t0, t1)
    [key] = matching(r, "j|*")
    assert key in candidates
    got = fields(r, key)
    assert set(got) == {"Ok|p", "Ok|ms", "Boom|p", "Boom|f", "Mailer|p", "Mailer|ms"}
    assert (got["Ok|p"], got["Boom|p"], got["Boom|f"], got["Mailer|p"]) == (3, 1, 1, 1)
    assert 0 < r.ttl(key) <= METRICS_TTL_S
    assert r.keys("Boom-*") == []  # failures add no time
    [ok_gram] = matching(r, "Ok-*")
    [mail_gram] = matching(r, "Mailer-*")
    assert ok_gram in {Keys().metrics_histogram("Ok", m) for m in minutes}
    assert ok_gram.removeprefix("Ok") == mail_gram.removeprefix("Mailer")
    assert sum(histogram(r, ok_gram)) == 3
    assert sum(histogram(r, mail_gram)) == 1
    assert 0 < r.ttl(ok_gram) <= METRICS_TTL_S
    # Flushed once: the next beat writes nothing more.
    assert proc.state.take_metrics() == {}


def test_exact_buckets_fields_and_saturation(r: redis.Redis, config: Config) -> None:
    state = State(IDENTITY)
    for ms in (0, 19, 20, 1000, 1099, 335_000, 9_999_999):
        state.count(failed=False, job_class="Timed", ms=ms)
    state.count(failed=True, job_class="Timed")
    t0 = time.time()
    assert heartbeat(r, config, state).beat() is True
    t1 = time.time()

    _, minutes = minute_keys(t0, t1)
    [key] = matching(r, "j|*")
    assert fields(r, key) == {"Timed|p": 8, "Timed|f": 1,
                              "Timed|ms": 0 + 19 + 20 + 1000 + 1099 + 335_000 + 9_999_999}
    [gram] = matching(r, "Timed-*")
    assert gram in {Keys().metrics_histogram("Timed", m) for m in minutes}
    expected = [0] * HISTOGRAM_BUCKETS
    expected[0], expected[1], expected[10], expected[25] = 2, 1, 2, 2
    assert histogram(r, gram) == expected

    # u16 counters saturate (OVERFLOW SAT) instead of wrapping.
    for _ in range(2):
        state = State(IDENTITY)
        state.restore_metrics({"Timed": [40_000, 0, 0] + [40_000] + [0] * 25})
        assert heartbeat(r, config, state).beat() is True
    at = datetime.fromtimestamp(time.time(), UTC)
    assert histogram(r, Keys().metrics_histogram("Timed", at))[0] == 65535


def test_counts_are_restored_when_the_flush_fails(r: redis.Redis, config: Config) -> None:
    state = State(IDENTITY)
    state.count(failed=False, job_class="Kept", ms=40)
    state.count(failed=True, job_class="Kept")
    down = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    assert heartbeat(down, config, state).beat() is False
    assert r.keys("j|*") == []

    assert heartbeat(r, config, state).beat() is True
    [key] = matching(r, "j|*")
    assert fields(r, key) == {"Kept|p": 2, "Kept|f": 1, "Kept|ms": 40}
    [gram] = matching(r, "Kept-*")
    assert histogram(r, gram)[2] == 1  # 30 <= 40 < 45


def test_clean_exit_flushes_metrics(r: redis.Redis, config: Config) -> None:
    state = State(IDENTITY)
    state.count(failed=False, job_class="Last", ms=5)
    heartbeat(r, config, state).clear()
    [key] = matching(r, "j|*")
    assert fields(r, key) == {"Last|p": 1, "Last|ms": 5}


def test_api_reads_totals_and_the_summed_histogram(r: redis.Redis, config: Config) -> None:
    now = time.time()
    minute = 60.0
    keys = Keys()

    def write(at: float, job_class: str, p: int, f: int, ms: list[int]) -> None:
        state = State(IDENTITY)
        for t in ms:
            state.count(failed=False, job_class=job_class, ms=t)
        for _ in range(f):
            state.count(failed=True, job_class=job_class)
        for _ in range(p - f - len(ms)):
            state.count(failed=False, job_class=job_class, ms=0)
        pipe = r.pipeline()
        flush_metrics(pipe, keys, state.take_metrics(), at)
        pipe.execute()

    write(now, "A", 3, 1, [10, 50])
    write(now - 30 * minute, "A", 1, 0, [100])
    write(now - 90 * minute, "A", 2, 0, [1000, 1000])
    write(now - 5 * minute, "B<i>", 1, 1, [])

    one = Metrics(config).query(1, now=now)
    assert [j.name for j in one.jobs] == ["A", "B<i>"]
    a, b = one.jobs
    assert (a.executions, a.failures, a.total_ms) == (4, 1, 160)
    assert a.avg_ms == pytest.approx(160 / 3)
    assert (b.executions, b.failures, b.total_ms, b.avg_ms) == (1, 1, 0, 0.0)
    assert sum(a.histogram) == 3 and a.histogram[0] == 1 and a.histogram[3] == 1
    assert one.histogram == a.histogram
    two = Metrics(config).query(2, now=now)
    assert (two.jobs[0].executions, two.jobs[0].total_ms) == (6, 2160)
    assert two.histogram[10] == 2
    assert two.ends_at - two.starts_at == (2 * 60 - 1) * 60
