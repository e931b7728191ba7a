"""Dealing: one fetch's jobs given out in turn to several processors' batches.

At start (``deal``) and on the event loop (``loopfetch.py``), one round trip takes
jobs for several processors at once. Without it, a process starting on a deep
queue at ``-c 100`` made 100 fetches at once, one per thread, and its last
processor ran its first job about 20 ms after the first one did: a delay every
later job of that processor inherited.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from roadie.server.fetch import Fetcher, UnitOfWork
from roadie.server.outage import TRANSIENT
from roadie.server.state import State
from roadie.server.supply.supply import Supply

log = logging.getLogger("roadie")


def deal(fetcher: Fetcher, supplies: Sequence[Supply], state: State) -> int:
    """Give starting processors their first jobs with one round trip; returns how many.

    One fetch takes up to a full batch per processor (never more than the first
    non-empty queue holds) and deals the jobs out in turn, oldest first, so every
    processor starts together. They are in the process's in-flight list like any
    fetched job. If Redis does not answer, each processor fetches (and reports the
    outage) itself.
    """
    if not supplies or state.quiet.is_set():
        return 0
    try:
        got = fetcher.fetch(len(supplies) * supplies[0].max_batch, skip=state.paused,
                            share=1)
    except TRANSIENT as exc:
        log.debug("the first fetch for all the processors failed (%s); each fetches "
                  "its own", exc)
        return 0
    deal_out(got, [(s, s.max_batch) for s in supplies])
    return len(got)


def deal_out(jobs: Sequence[UnitOfWork], takers: Sequence[tuple[Supply, int]]) -> None:
    """Append ``jobs`` (oldest first) to the takers' batches in turn, each up to the
    number it wants; a taker that gets fewer is marked as draining."""
    given = [0] * len(takers)
    it = iter(jobs)
    for turn in range(max((w for _, w in takers), default=0)):
        for i, (supply, want) in enumerate(takers):
            if want > turn:
                uow = next(it, None)
                if uow is None:
                    break
                supply.batch.append(uow)
                given[i] += 1
        else:
            continue
        break
    for (supply, want), n in zip(takers, given, strict=True):
        supply.note_fetched(n, want)
