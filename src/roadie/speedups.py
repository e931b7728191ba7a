"""Every speed mechanism of the run path, in one list, each with a switch.

Each one makes jobs faster without changing what happens to them. Each can be
turned off, alone or all at once, with the ``speedups_off`` setting
(``ROADIE_SPEEDUPS_OFF=batch,steal`` or ``=all``): a duplicate run or a hang can then be
narrowed to one mechanism, and CI runs the suite once with all of them off. The gains
are the steady-state figures measured when each was added (docs/performance.md has
the runs); docs/internals.md shows the same table.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from roadie.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Speedup:
    name: str
    #: What it does, and what it replaces when off.
    does: str
    #: What it was measured to gain, in steady state.
    gain: str


SPEEDUPS: tuple[Speedup, ...] = (
    Speedup("batch",
            "a fetch takes up to 10 jobs (about 0.1 s of work, and only from a queue deep "
            "enough to give every processor as many); off: one job per fetch",
            "one round trip per batch instead of per job (Where the time goes)"),
    Speedup("deferred_ack",
            "a success's LREM rides on the processor's next fetch (or the main loop's "
            "flush after 50 ms); off: each success is acknowledged at once",
            "one round trip less per job"),
    Speedup("steal",
            "a processor whose queues ran dry runs an unstarted job of a sibling's "
            "batch; off: it waits on Redis",
            "the end of a drain no longer waits behind one processor's batch "
            "(Seventh pass)"),
    Speedup("park",
            "processors that ran dry wait in the process while one per queue waits on "
            "Redis (server/supply/parking.py), on their thread or on the event loop; off: each "
            "waits on Redis with its own blocking fetch",
            "a drained queue no longer sends every processor to Redis at once (Eighth "
            "and Seventh passes)"),
    Speedup("deal",
            "one fetch deals every starting processor its first jobs; off: each "
            "processor makes its first fetch",
            "at -c 100 on a deep queue the last processor started 20 ms after the first "
            "(Fifth pass)"),
    Speedup("start_together",
            "the processors of a process, and the workers of roadie run -P, begin "
            "fetching together once all are ready (at most 2 s); off: each begins when "
            "it is started",
            "100 async jobs of 10 ms at -c 100: 0.29 s instead of 0.36 s (Fifth pass)"),
    Speedup("loop_fetch",
            "the event loop fetches for processors running async jobs, one round trip "
            "for all that ask at once; off: each processor's thread fetches",
            "no thread wakes for an async job's fetch (Fourth pass)"),
    Speedup("refill",
            "while the last job of a batch of sync jobs of 5 ms or more runs, the loop "
            "fetches the next batch; off: the thread fetches after it",
            "at -c 100 a thread's own fetch between two jobs took several ms waiting "
            "for the GIL (Fifth pass)"),
    Speedup("loop_connection",
            "the loop's fetches go over a connection of its own, written and read "
            "without redis.asyncio's per-command machinery; off: redis.asyncio's client",
            "about 80 us of loop CPU less per fetch (Sixth pass)"),
    Speedup("short_command_path",
            "a processor's own connection sends commands straight to the connection, "
            "skipping redis-py 8's per-command extras; off: redis-py's own path",
            "about 10 us of CPU less per command (Fourth pass)"),
    Speedup("gil_send",
            "commands up to 16 KB are written with the GIL held (libc send, "
            "MSG_DONTWAIT); off: socket.sendall, which lets the GIL go",
            "one-call jobs at -c 10: 20-45 us of CPU less per job, 20-30 % more jobs/s "
            "(Sixth pass)"),
    Speedup("lend_connection",
            "roadie.redis_client() in a job returns its processor's own connection, idle "
            "while the job runs; off: the default client's pool",
            "100 connections fewer at -c 100, and no connect on a job's first call"),
)

NAMES: frozenset[str] = frozenset(s.name for s in SPEEDUPS)


def parse_off(values: Iterable[str]) -> tuple[str, ...]:
    """The ``speedups_off`` setting as names: ``all`` means every one; an unknown name
    is a ``ConfigError`` listing the known ones."""
    names = [v.strip() for v in values if v.strip()]
    if "all" in names:
        return tuple(s.name for s in SPEEDUPS)
    unknown = sorted(set(names) - NAMES)
    if unknown:
        raise ConfigError(
            f"speedups_off names no such mechanism: {', '.join(unknown)}; the mechanisms "
            f"are {', '.join(s.name for s in SPEEDUPS)} (or 'all')"
        )
    return tuple(dict.fromkeys(names))
