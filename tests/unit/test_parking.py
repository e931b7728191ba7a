"""``roadie.server.supply.parking.Parking``: where processors wait when the queues run dry
while their siblings still run jobs, with real threads."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from support.wait import wait_until

from roadie.server.supply.parking import Parking

LONG = 30.0  # a park limit no test reaches unless it means to


@contextmanager
def watcher(lanes: Parking, key: str = "q") -> Iterator[threading.Event]:
    """A thread waiting on Redis for ``key`` until the event is set."""
    done = threading.Event()
    entered = threading.Event()

    def run() -> None:
        with lanes.watching(key):
            entered.set()
            done.wait(LONG)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert entered.wait(5.0)
    try:
        yield done
    finally:
        done.set()
        thread.join(5.0)


def parker(lanes: Parking, quiet: threading.Event, key: str = "q",
           limit_s: float = LONG) -> tuple[threading.Thread, list[bool]]:
    """A thread parking on ``key``; its result lands in the list."""
    got: list[bool] = []
    thread = threading.Thread(target=lambda: got.append(lanes.park(key, quiet, limit_s)),
                              daemon=True)
    thread.start()
    return thread, got


def parked(lanes: Parking, n: int) -> Callable[[], bool]:
    return lambda: lanes.parked == n


def parked_one(lanes: Parking, quiet: threading.Event) -> tuple[threading.Thread, list[bool]]:
    """A thread that parks on "q" (while a watcher waits on it), once it has parked."""
    thread, got = parker(lanes, quiet)
    wait_until(parked(lanes, 1), message="the processor did not park")
    return thread, got


def test_the_first_to_run_dry_goes_to_redis_at_once() -> None:
    lanes = Parking(3)
    quiet = threading.Event()
    assert lanes.park("q", quiet, LONG) is False  # nobody waits on Redis for "q" yet
    with watcher(lanes, "other"):  # a watcher of another queue does not count
        assert lanes.park("q", quiet, LONG) is False
    assert lanes.parked == 0


def test_a_parked_processor_fetches_once_the_watcher_gets_a_job() -> None:
    lanes = Parking(4)  # 1 watching, 1 parked, 2 still running jobs
    quiet = threading.Event()
    with watcher(lanes):
        thread, got = parked_one(lanes, quiet)
        assert thread.is_alive()
        lanes.found()
        thread.join(5.0)
    assert got == [True]
    assert lanes.parked == 0


def test_the_last_busy_processor_releases_the_parked_ones() -> None:
    lanes = Parking(3)
    quiet = threading.Event()
    with watcher(lanes):
        thread, got = parked_one(lanes, quiet)
        # The third and last runs dry: every processor is idle, so all go to Redis.
        assert lanes.park("q", quiet, LONG) is False
        thread.join(5.0)
    assert got == [True]


def test_a_processor_turning_to_redis_can_leave_all_idle() -> None:
    lanes = Parking(3)
    quiet = threading.Event()
    with watcher(lanes):
        thread, got = parked_one(lanes, quiet)
        with lanes.watching("other"):  # the third waits on Redis for its own queue
            thread.join(5.0)
            assert lanes.watchers == 2
    assert got == [True]
    assert lanes.watchers == 0


def test_a_park_ends_after_its_limit() -> None:
    lanes = Parking(3)
    quiet = threading.Event()
    with watcher(lanes):
        t0 = time.monotonic()
        assert lanes.park("q", quiet, 0.05) is True
        assert time.monotonic() - t0 >= 0.05


def test_quiet_wakes_every_parked_processor_and_none_parks_after() -> None:
    lanes = Parking(5)
    quiet = threading.Event()
    with watcher(lanes):
        threads = [parker(lanes, quiet) for _ in range(2)]
        wait_until(parked(lanes, 2), message="the processors did not park")
        quiet.set()
        lanes.wake_all()
        for thread, got in threads:
            thread.join(5.0)
            assert got == [True]
        assert lanes.park("q", quiet, LONG) is False
    assert lanes.parked == 0


def test_a_lane_parks_on_its_event_loop_until_released() -> None:
    lanes = Parking(4)
    quiet = threading.Event()

    async def lane() -> tuple[int, int]:
        future = lanes.park_on_loop("q", quiet)
        assert future is not None
        parked_then = lanes.parked
        # Released from another thread (a watcher that got a job).
        threading.Thread(target=lanes.found).start()
        await asyncio.wait_for(future, 5.0)
        lanes.unpark(future)
        return parked_then, lanes.parked

    with watcher(lanes):
        assert asyncio.run(lane()) == (1, 0)
        assert lanes.park("q", quiet, 0.01) is True  # the thread-side count is right too


def test_a_lane_parked_on_the_loop_is_counted_until_unparked_after_its_limit() -> None:
    lanes = Parking(4)
    quiet = threading.Event()

    async def lane() -> list[int]:
        seen = []
        future = lanes.park_on_loop("q", quiet)
        assert future is not None
        seen.append(lanes.parked)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(future, 0.02)
        lanes.unpark(future)
        seen.append(lanes.parked)
        return seen

    with watcher(lanes):
        assert asyncio.run(lane()) == [1, 0]


def test_no_lane_parks_on_the_loop_without_a_watcher_or_when_it_is_the_last() -> None:
    lanes = Parking(2)
    quiet = threading.Event()

    async def lane() -> object:
        return lanes.park_on_loop("q", quiet)

    assert asyncio.run(lane()) is None  # nobody waits on Redis for "q"
    with watcher(lanes):
        assert asyncio.run(lane()) is None  # 1 watching + this one: all idle
    assert lanes.parked == 0


def test_releasing_a_lane_whose_loop_has_closed_is_harmless() -> None:
    lanes = Parking(4)
    quiet = threading.Event()
    loop = asyncio.new_event_loop()

    async def park() -> object:
        return lanes.park_on_loop("q", quiet)

    with watcher(lanes):
        assert loop.run_until_complete(park()) is not None  # never unparked
        loop.close()
        lanes.wake_all()  # would call into the closed loop
    assert lanes.parked == 0
