"""Jobs that fork, for tests/system/test_system_fork.py (``roadie run -r forkjobs.py``).

``sys:runs`` counts each job's runs by jid (HINCRBY), as in ``sysjobs.py``.
"""

from __future__ import annotations

import os

import redis

import roadie

RUNS = "sys:runs"


class ForkAndReturn(roadie.Job, name="sys.ForkAndReturn"):
    """Forks; the child returns from ``perform`` instead of exiting (the mistake a
    library's daemonizing helper, or a hand-written fork, can make)."""

    def perform(self, n: int) -> None:
        own = redis.Redis.from_url(os.environ["REDIS_URL"])
        own.hincrby(RUNS, self.jid, 1)
        pid = os.fork()
        if pid == 0:
            # The child uses the processor's lent connection before it returns.
            roadie.redis_client().incr("sys:child-calls")
            return
        os.waitpid(pid, 0)


class ForkAndRaise(roadie.Job, name="sys.ForkAndRaise"):
    """Forks; the child raises out of ``perform``."""

    def perform(self, n: int) -> None:
        own = redis.Redis.from_url(os.environ["REDIS_URL"])
        own.hincrby(RUNS, self.jid, 1)
        pid = os.fork()
        if pid == 0:
            raise RuntimeError("the child's failure")
        os.waitpid(pid, 0)
