"""server/asyncloop.py: the event loop thread of ``async def perform`` jobs. A
coroutine run from another thread gives back its value or its exception (even
SystemExit, without stopping the loop), a started one can be cancelled, and stop ends
what still runs and the thread (no Redis: no loop client is made)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from roadie.server.asyncloop import LoopThread, Pending


@pytest.fixture
def loop_thread() -> Iterator[LoopThread]:
    """An event loop thread (asyncio's loop), stopped and joined at the end."""
    runner = LoopThread("asyncio")
    yield runner
    runner.stop()
    runner.thread.join(5)


async def forever(started: threading.Event) -> None:
    started.set()
    await asyncio.Event().wait()  # nothing sets it: only a cancellation ends it


@pytest.mark.parametrize(("kind", "module"), [("auto", "uvloop"), ("uvloop", "uvloop"),
                                              ("asyncio", "asyncio")])
def test_async_jobs_run_on_the_configured_event_loop(kind: str, module: str) -> None:
    pytest.importorskip("uvloop")  # a dependency of roadie except on Windows
    from roadie.server.asyncloop import LoopThread

    runner = LoopThread(kind)
    try:
        async def loop_module() -> str:
            return type(asyncio.get_running_loop()).__module__.split(".")[0]

        assert runner.run(loop_module()) == module
    finally:
        runner.stop()


def test_run_gives_back_the_value_computed_on_the_loop_thread(loop_thread: LoopThread) -> None:
    async def where(x: int) -> tuple[int, str]:
        await asyncio.sleep(0)
        return x * 2, threading.current_thread().name

    assert loop_thread.run(where(21)) == (42, "roadie.asyncio")


@pytest.mark.parametrize("exc", [ValueError("boom"), SystemExit(3), KeyboardInterrupt()],
                         ids=repr)
def test_an_exception_reaches_the_caller_and_the_loop_goes_on(
    loop_thread: LoopThread, exc: BaseException
) -> None:
    async def fail() -> None:
        await asyncio.sleep(0)
        raise exc

    with pytest.raises(type(exc)):
        loop_thread.run(fail())

    async def after() -> str:
        return "still running"

    # SystemExit escaping a task would have stopped the loop: this run would hang.
    assert loop_thread.run(after()) == "still running"


def test_a_started_coroutine_can_be_cancelled(loop_thread: LoopThread) -> None:
    started = threading.Event()
    pending = loop_thread.start(forever(started))
    assert isinstance(pending, Pending)
    assert started.wait(5) and not pending.done

    pending.cancel()

    assert pending.wait(5) and pending.done
    with pytest.raises(asyncio.CancelledError):
        pending.result()


def test_a_loop_without_a_connect_function_has_no_redis_client(loop_thread: LoopThread) -> None:
    assert loop_thread.run(loop_thread.client()) is None
    loop_thread.warm()  # nothing to connect: returns at once


def test_stop_cancels_what_still_runs_and_ends_the_thread() -> None:
    runner = LoopThread("asyncio")
    started = threading.Event()
    cancelled = threading.Event()

    async def job() -> None:
        try:
            await forever(started)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    runner.start(job())
    assert started.wait(5)

    runner.stop()
    runner.thread.join(5)

    # The coroutine got its cancellation before the loop stopped (a job pushed back
    # at a hard stop does not go on running), and the thread ended.
    assert cancelled.is_set()
    assert not runner.thread.is_alive()
