"""Jobs of the hostile-queue test (tests/fuzz/test_fuzz_hostile_queue.py).

``roadie run -r fuzzjobs.py`` loads them; both count their runs in Redis so that the
test can prove each good job ran exactly once.
"""

from __future__ import annotations

import roadie

RUNS_KEY = "fuzz:runs"


class Good(roadie.Job, name="fuzz.Good"):
    """A good job: ``i`` is its index. Anything else is a bad call and raises."""

    def perform(self, i: int, pad: str = "") -> None:
        if type(i) is not int or not 0 <= i < 10**6 or not isinstance(pad, str):
            raise TypeError(f"fuzz.Good takes an index and a str, got {i!r:.40}")
        roadie.redis_client().hincrby(RUNS_KEY, str(i), 1)


class Strict(roadie.Job, name="fuzz.Strict"):
    """Takes no argument at all: any args given make Python raise a TypeError."""

    def perform(self) -> None:
        raise AssertionError("fuzz.Strict is only ever called with bad arguments")
