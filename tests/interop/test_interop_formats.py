"""Sidekiq 7 and 8 formats, from fixtures (they cannot be installed here).

The fixtures in ``fixtures/`` are written from SIDEKIQ-WIRE.md: integer-millisecond
times (8.x), ``<identity>:work`` (6.5+) beside 6.4's ``:workers``, ``concurrency``
only as a hash field (8.1.2+), both ActiveJob wrapper names. roadie's processor
runs them and its api reads them; and what roadie writes stays in the one unit
every version reads (float seconds). No Ruby needed: these always run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import redis

import roadie
from roadie import payload as pl
from roadie.api import DeadSet, ProcessSet, Queue, RetrySet, Workers
from roadie.client import Client
from roadie.config import Config
from roadie.keys import Keys
from roadie.middleware import Hooks
from roadie.registry import Registry
from roadie.server.fetch import Fetcher
from roadie.server.heartbeat import Heartbeat
from roadie.server.outage import Outage
from roadie.server.processor import LoopThread, Processor
from roadie.server.state import State

FIXTURES = Path(__file__).resolve().parent / "fixtures"
IDENTITY = "fixturehost:4242:abcdefabcdef"


def fixture(name: str) -> dict[str, Any]:
    value = json.loads((FIXTURES / f"{name}.json").read_text())
    assert isinstance(value, dict)
    return value


class Ran:
    """A registry of Python jobs that record their calls (or fail on purpose)."""

    def __init__(self) -> None:
        self.registry = Registry()
        self.calls: list[tuple[str, list[Any]]] = []
        calls = self.calls

        class HardJob(roadie.Job, name="HardJob", registry=self.registry):
            fail = False

            def perform(self, *args: Any) -> None:
                calls.append(("HardJob", list(args)))
                if HardJob.fail:
                    raise RuntimeError("python says no")

        class WindowJob(roadie.Job, name="WindowJob", registry=self.registry):
            def perform(self, *args: Any) -> None:
                raise RuntimeError("still failing")

        class Thumbnail(roadie.Job, name="Images::ThumbnailJob", registry=self.registry):
            def perform(self, *args: Any) -> None:
                calls.append(("Images::ThumbnailJob", list(args)))

        self.hard = HardJob


@pytest.fixture
def config(config: Config) -> Config:
    return config.replace(queues=(("default", 0), ("critical", 0)))


@pytest.fixture
def ran() -> Ran:
    return Ran()


def run_one(r: redis.Redis, config: Config, ran: Ran) -> None:
    """Fetch one job and run it through a processor wired as the launcher does."""
    keys = Keys(config.namespace)
    fetcher = Fetcher(r, config, keys, IDENTITY)
    loop_threads: list[LoopThread] = []
    processor = Processor(
        0, config=config, keys=keys, fetcher=fetcher, state=State(IDENTITY), hooks=Hooks(),
        registry=ran.registry, outage=Outage("redis://test"),
        loop_thread=lambda: loop_threads[0],
    )
    [uow] = fetcher.fetch(1)
    processor.runner.process(uow)
    assert r.llen(keys.inflight(IDENTITY)) == 0


# --- payloads ---------------------------------------------------------------------------
def test_sidekiq8_integer_millisecond_job_runs_and_reads_in_seconds(
    r: redis.Redis, config: Config, ran: Ran
) -> None:
    raw = fixture("sidekiq8_job")["raw"]
    r.lpush("queue:default", raw)
    q = Queue("default", config)
    assert q.latency(now=1754000010.125) == pytest.approx(10.0)
    [record] = q.entries()
    assert record.created_at == pytest.approx(1754000000.123)
    assert record.enqueued_at == pytest.approx(1754000000.125)
    run_one(r, config, ran)
    assert ran.calls == [("HardJob", [1, "two"])]


def test_sidekiq8_retry_entry_reads_and_a_new_failure_keeps_its_units(
    r: redis.Redis, config: Config, ran: Ran
) -> None:
    fx = fixture("sidekiq8_retry")
    r.zadd("retry", {fx["raw"]: fx["score"]})
    [entry] = RetrySet(config).entries()
    assert entry.score == 1754000024.87
    assert entry.record.failed_at == pytest.approx(1754000001.010)
    assert entry.record.error_backtrace == [
        "app/jobs/hard_job.rb:12:in `perform'", "sidekiq/processor.rb:202:in `execute_job'"]
    # Due: onto the queue (what a poller does), then it fails again in roadie.
    r.zrem("retry", fx["raw"])
    r.lpush("queue:default", fx["raw"])
    ran.hard.fail = True
    run_one(r, config, ran)
    [raw] = r.zrange("retry", 0, -1)
    again = json.loads(raw)
    assert again["retry_count"] == 1
    # Times Sidekiq 8 wrote stay as written; the one roadie adds is float seconds.
    assert again["created_at"] == 1754000000123 and again["failed_at"] == 1754000001010
    assert isinstance(again["retried_at"], float)
    assert again["error_class"] == "RuntimeError" and again["error_message"] == "python says no"


@pytest.mark.parametrize(("retry_for", "where"), [(3600, "dead"), (315_360_000, "retry")])
def test_retry_for_counts_from_a_millisecond_failed_at(
    r: redis.Redis, config: Config, ran: Ran, retry_for: int, where: str
) -> None:
    raw = fixture("sidekiq8_retry_for")["raw"].replace('"retry_for":3600',
                                                      f'"retry_for":{retry_for}')
    r.lpush("queue:default", raw)
    run_one(r, config, ran)
    # failed_at (2025, in ms) + 1 hour is long past: dead. + 10 years: not yet.
    assert (r.zcard("dead"), r.zcard("retry")) == ((1, 0) if where == "dead" else (0, 1))
    s = DeadSet(config) if where == "dead" else RetrySet(config)
    [entry] = s.entries()
    assert entry.record.retry_count == 3


@pytest.mark.parametrize("name", ["sidekiq7_activejob", "sidekiq8_activejob"])
def test_activejob_payloads_of_both_wrapper_names_run_the_wrapped_job(
    r: redis.Redis, config: Config, ran: Ran, name: str
) -> None:
    raw = fixture(name)["raw"]
    payload = json.loads(raw)
    r.lpush("queue:default", raw)
    [record] = Queue("default", config).entries()
    assert record.is_activejob and record.display_class == "Images::ThumbnailJob"
    assert record.display_args == payload["args"][0]["arguments"]
    run_one(r, config, ran)
    assert ran.calls == [("Images::ThumbnailJob", payload["args"][0]["arguments"])]


# --- processes and running jobs ----------------------------------------------------------
def load_process(r: redis.Redis, fx: dict[str, Any]) -> str:
    ident = fx["identity"]
    r.sadd("processes", ident)
    r.hset(ident, mapping=fx["hash"])
    r.hset(f"{ident}:{fx['work_key']}", mapping=fx["work"])
    return str(ident)


def test_processes_of_sidekiq_6_7_and_8_read_right(r: redis.Redis, config: Config) -> None:
    six = load_process(r, fixture("sidekiq64_process"))
    seven = load_process(r, fixture("sidekiq7_process"))
    eight = load_process(r, fixture("sidekiq81_process"))
    procs = {p.identity: p for p in ProcessSet(config).processes()}
    assert set(procs) == {six, seven, eight}
    # concurrency: inside info (6.4, 7.x) or only as a hash field (8.1.2+).
    assert {i: p.concurrency for i, p in procs.items()} == {six: 2, seven: 5, eight: 12}
    assert [procs[i].version for i in (six, seven, eight)] == ["", "7.3.9", "8.1.7"]
    assert [procs[i].is_quiet for i in (six, seven, eight)] == [False, False, True]
    assert procs[seven].queues == ["critical", "default"] and procs[seven].labels == ["blue"]
    assert procs[seven].info["weights"] == [{"critical": 2, "default": 1}]
    assert procs[eight].info["capsules"]["default"]["concurrency"] == 12
    assert procs[six].started_at == 1795869060.1448326
    works = {w.identity: w for w in Workers(config).entries()}
    # :workers (6.4) and :work (6.5+) are both read.
    assert set(works) == {six, seven, eight}
    assert works[six].tid == "6ct" and works[six].display_class == "OkJob"
    assert works[six].run_at == 1795869060
    for ident in (seven, eight):
        assert works[ident].jid == "c0ffeec0ffeec0ffeec0ffee" and works[ident].queue == "critical"
        assert works[ident].run_at == 1754000091
        assert works[ident].record.created_at == pytest.approx(1754000000.123)
        assert works[ident].record.enqueued_at == pytest.approx(1754000090.5)


# --- what roadie writes ---------------------------------------------------------------------
def test_roadie_writes_every_payload_time_as_float_seconds(r: redis.Redis, config: Config,
                                                           ran: Ran) -> None:
    """Sidekiq 8 reads a JSON float as seconds and an integer as ms; 6 and 7 read
    seconds only. So a time roadie writes must always be a JSON float (never an
    integer, even when the value happens to be whole)."""
    assert pl.encode({"t": 1754000000.0}) == b'{"t":1754000000.0}'
    client = Client(config, hooks=Hooks())
    client.push({"class": "HardJob", "args": [1]})
    pushed = json.loads(r.lindex("queue:default", 0))
    assert isinstance(pushed["created_at"], float) and isinstance(pushed["enqueued_at"], float)
    ran.hard.fail = True
    run_one(r, config, ran)
    [raw] = r.zrange("retry", 0, -1)
    failed = json.loads(raw)
    assert isinstance(failed["failed_at"], float)
    assert isinstance(failed["created_at"], float)

    state = State(IDENTITY)
    state.start_work("t1", "default", raw)
    hb = Heartbeat(r, config, Keys(), state, Outage("redis://test"),
                   on_signal=lambda s: None, on_first_beat=lambda: None)
    assert hb.beat()
    fields = {k.decode(): v.decode() for k, v in r.hgetall(IDENTITY).items()}
    assert "." in fields["beat"]
    info = json.loads(fields["info"])
    assert isinstance(info["started_at"], float) and isinstance(info["concurrency"], int)
    assert fields["concurrency"] == str(info["concurrency"])  # both places (8.1.2+ and older)
    work = json.loads(r.hget(f"{IDENTITY}:work", "t1"))
    assert r.hget(f"{IDENTITY}:workers", "t1") == r.hget(f"{IDENTITY}:work", "t1")
    assert isinstance(work["run_at"], int) and isinstance(work["payload"], str)
