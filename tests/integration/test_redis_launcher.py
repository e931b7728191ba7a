"""server.launcher.Launcher in this process: start(), run jobs, quiet(), stop()."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest
import redis
from integration_support import loads, processors_exited
from support.wait import wait_until

from roadie.config import Config
from roadie.job import Job
from roadie.middleware import Hooks
from roadie.registry import Registry
from roadie.server.launcher import Launcher

#: Every test pushes through the test's Redis (the ``client`` fixture, conftest.py).
pytestmark = pytest.mark.usefixtures("client")


@pytest.mark.speedup("start_together")
def test_started_launcher_runs_pushed_jobs(
    r: redis.Redis, registry: Registry, hooks: Hooks, launch: Callable[..., Launcher]
) -> None:
    ran: list[int] = []
    events: list[str] = []
    for name in ("startup", "heartbeat", "quiet", "shutdown"):
        hooks.on(name)(lambda name=name: events.append(name))  # type: ignore[misc]

    class Add(Job, registry=registry, name="Add"):
        def perform(self, n: int) -> None:
            ran.append(n)

    launcher = launch()
    assert r.smembers("processes") == {launcher.identity.encode()}
    # The processors start fetching together, once the last one is started.
    assert launcher.manager.started.is_set()
    assert all(p.gate is launcher.manager.started for p in launcher.manager.processors)
    assert launcher.manager.deal is not None  # their first jobs come with one fetch
    for n in range(5):
        Add.perform_async(n)

    wait_until(lambda: len(ran) == 5, message="jobs did not run")
    launcher.stop()

    assert sorted(ran) == [0, 1, 2, 3, 4]
    assert r.exists("queue:default", f"roadie:inflight:{launcher.identity}", "retry") == 0
    assert r.get("stat:processed") == b"5"
    assert r.get("stat:failed") is None
    assert r.smembers("processes") == set()
    # roadie beats once inside start() (to fail fast), so "heartbeat" may precede
    # "startup" (Sidekiq fires startup first); quiet and shutdown come last, in order.
    assert sorted(events[:2]) == ["heartbeat", "startup"]
    assert events[2:] == ["quiet", "shutdown"]


@pytest.mark.speedup("start_together")
def test_a_start_gate_is_passed_once_with_every_processor_ready_before_any_fetch(
    r: redis.Redis, config: Config, hooks: Hooks, registry: Registry,
) -> None:
    ran: list[int] = []

    class Add(Job, registry=registry, name="Add"):
        def perform(self, n: int) -> None:
            ran.append(n)

    Add.perform_bulk([[n] for n in range(6)])
    launcher = Launcher(config.replace(concurrency=3, timeout_s=5.0), hooks=hooks,
                        registry=registry)
    seen: list[tuple[int, int, bool]] = []

    def gate() -> None:  # what a worker of `roadie run -P N` waits in (startgate)
        seen.append((len(launcher.manager.processors), int(r.llen("queue:default")),
                     all(p.thread.is_alive() for p in launcher.manager.processors)))

    launcher.start_gate = gate
    launcher.start()
    try:
        wait_until(lambda: len(ran) == 6, message="jobs did not run")
    finally:
        launcher.stop()
    # Called once, when the 3 processors' threads were running and nothing was fetched.
    assert seen == [(3, 6, True)]
    assert launcher.start_gate is None


def test_stop_waits_for_a_job_that_ends_within_the_timeout(
    r: redis.Redis, registry: Registry, launch: Callable[..., Launcher],
    release: threading.Event,
) -> None:
    started = threading.Event()

    class Short(Job, registry=registry, name="Short"):
        def perform(self) -> None:
            started.set()
            release.wait(30)

    launcher = launch(concurrency=1, timeout_s=10.0)
    Short.perform_async()
    wait_until(started.is_set, message="the job did not start")
    stopper = threading.Thread(target=launcher.stop)
    stopper.start()
    wait_until(launcher.state.quiet.is_set, message="stop did not quiet the process")

    release.set()
    stopper.join(10)

    assert not stopper.is_alive()
    assert not launcher.hard_stopped and launcher.requeued == 0
    assert r.exists("queue:default", f"roadie:inflight:{launcher.identity}") == 0
    assert r.get("stat:processed") == b"1"


def test_quiet_stops_fetching(
    r: redis.Redis, registry: Registry, launch: Callable[..., Launcher]
) -> None:
    ran: list[str] = []

    class Rec(Job, registry=registry, name="Rec"):
        def perform(self, label: str) -> None:
            ran.append(label)

    launcher = launch(concurrency=3)
    Rec.perform_async("before")
    wait_until(lambda: ran == ["before"], message="job did not run before quiet")

    launcher.quiet()
    Rec.perform_async("after")  # processors may still be blocked on the queue
    wait_until(lambda: processors_exited(launcher), message="processors did not exit")

    assert ran == ["before"]
    [raw] = r.lrange("queue:default", 0, -1)
    assert loads(raw)["args"] == ["after"]
    assert r.exists(f"roadie:inflight:{launcher.identity}") == 0
    launcher.heartbeat.beat()
    assert r.hget(launcher.identity, "quiet") == b"true"


def test_signals_from_redis_request_quiet_and_stop(
    r: redis.Redis, launch: Callable[..., Launcher]
) -> None:
    launcher = launch()
    signals = f"{launcher.identity}-signals"

    r.lpush(signals, "TSTP")
    launcher.heartbeat.beat()
    assert launcher.quiet_requested.is_set() and not launcher.stop_requested.is_set()

    r.lpush(signals, "TERM")
    launcher.heartbeat.beat()
    assert launcher.stop_requested.is_set()


def test_os_signal_arriving_inside_event_wait_does_not_deadlock(config: Config) -> None:
    """Regression: the TERM handler used to call Event.set(); run while the main
    thread was inside Event.wait() (holding the Event's lock) it hung forever."""
    import os
    import signal

    launcher = Launcher(config, registry=Registry(), hooks=Hooks())
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT,
                                               signal.SIGTSTP, signal.SIGTTIN)}
    launcher.install_signal_handlers()
    try:
        with launcher.stop_requested._cond:  # what Event.wait() holds
            os.kill(os.getpid(), signal.SIGTERM)
            signal.sigtimedwait([], 0)  # a bytecode boundary: the handler runs here
            assert list(launcher._os_signals) == ["TERM"]  # it ran, and returned
        assert not launcher.stop_requested.is_set()  # the main loop acts on it later
        launcher.handle_signal(launcher._os_signals.popleft())
        assert launcher.stop_requested.is_set()
    finally:
        for s, h in saved.items():
            signal.signal(s, h)


@pytest.mark.speedup("park")
@pytest.mark.parametrize("kind", ["sync", "async"])
def test_processors_that_run_dry_park_while_a_sibling_runs_a_long_job(
    r: redis.Redis, registry: Registry, launch: Callable[..., Launcher], kind: str
) -> None:
    release = threading.Event()
    ran: list[int] = []

    if kind == "sync":
        class Long(Job, registry=registry, name="Long"):
            def perform(self) -> None:
                release.wait(10.0)

        class Quick(Job, registry=registry, name="Quick"):
            def perform(self, n: int) -> None:
                ran.append(n)
    else:
        class Long(Job, registry=registry, name="Long"):  # type: ignore[no-redef]
            async def perform(self) -> None:  # the job's own wait: it polls its flag
                while not release.is_set():
                    await asyncio.sleep(0.01)

        class Quick(Job, registry=registry, name="Quick"):  # type: ignore[no-redef]
            async def perform(self, n: int) -> None:
                ran.append(n)

    launcher = launch(concurrency=3)
    idle = launcher.parking
    wait_until(lambda: idle.watchers == 3, message="idle processors are not on Redis")
    try:
        Long.perform_async()
        wait_until(lambda: idle.watchers == 2, message="the long job did not start")
        Quick.perform_async(1)
        # The one that ran it found the queue dry: it waits in the process while
        # the third waits on Redis, instead of a fetch and a blocking wait of its own.
        wait_until(lambda: idle.parked == 1 and idle.watchers == 1,
                   message="the processor that ran dry did not park")
        # An async job's processor parks on the loop: its thread is not woken for it.
        parked_on_loop = [p for p in launcher.manager.processors if p.supply._parked_on_loop]
        assert len(parked_on_loop) == (1 if kind == "async" else 0)
        for n in range(2, 5):  # jobs still start at once, and all of them run
            Quick.perform_async(n)
        wait_until(lambda: sorted(ran) == [1, 2, 3, 4], message="quick jobs did not run")
    finally:
        release.set()
    # All idle: every processor waits on Redis for its queue, as before.
    wait_until(lambda: idle.watchers == 3 and idle.parked == 0,
               message="the processors did not all go back to Redis")
    launcher.stop()
    assert r.get("stat:processed") == b"5"
    assert r.exists("queue:default", f"roadie:inflight:{launcher.identity}") == 0


def test_start_warns_once_about_queues_no_processor_listens_to(
    registry: Registry, launch: Callable[..., Launcher], caplog: pytest.LogCaptureFixture
) -> None:
    class Mail(Job, registry=registry, name="Mail", queue="mail"):
        def perform(self) -> None: ...

    class Report(Job, registry=registry, name="Report", queue="reports"):
        def perform(self) -> None: ...

    class Plain(Job, registry=registry, name="Plain"):
        def perform(self) -> None: ...

    caplog.set_level("WARNING", logger="roadie")
    launch(queues=(("default", 0), ("reports", 0)))

    [line] = [m for m in caplog.messages if "does not listen to" in m]
    assert "mail (Mail)" in line and "add -q mail" in line
    assert "Report" not in line and "Plain" not in line


def test_start_is_silent_when_every_class_queue_is_served(
    registry: Registry, launch: Callable[..., Launcher], caplog: pytest.LogCaptureFixture
) -> None:
    class Mail(Job, registry=registry, name="Mail", queue="mail"):
        def perform(self) -> None: ...

    caplog.set_level("WARNING", logger="roadie")
    launch(queues=(("mail", 2), ("default", 1)))

    assert not [m for m in caplog.messages if "does not listen to" in m]


@pytest.mark.speedup("deal")
def test_without_the_start_gate_dealt_async_jobs_never_exceed_concurrency(
    r: redis.Redis, registry: Registry, launch: Callable[..., Launcher]
) -> None:
    """With the start gate off, a processor's thread runs as soon as it is started, so
    the jobs dealt to it must wait for that thread: starting them on the loop as well
    ran two stretches for one processor (twice the jobs at once), and the outcome of
    a failure in the untended one was never written."""
    running = 0
    most = 0
    ran: list[int] = []

    class Counted(Job, registry=registry, name="Counted"):
        async def perform(self, i: int) -> None:
            nonlocal running, most
            running += 1
            most = max(most, running)
            try:
                await asyncio.sleep(0.02)  # the job's own work
                if i == 0:
                    raise RuntimeError("the first job fails")
            finally:
                running -= 1
                ran.append(i)

    Counted.perform_bulk([[i] for i in range(40)])
    launcher = launch(concurrency=2, speedups_off=("start_together",))
    wait_until(lambda: len(ran) == 40, message="the jobs did not all run")
    inflight = f"roadie:inflight:{launcher.identity}"
    # The failure's retry entry is written, and nothing stays in flight.
    wait_until(lambda: r.zcard("retry") == 1 and r.llen(inflight) == 0,
               message="the failed job's outcome was not written")
    assert most <= 2
