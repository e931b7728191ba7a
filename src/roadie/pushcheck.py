"""What a push through a Job class checks before writing: its time and its arguments.

``to_epoch`` and ``to_seconds`` turn ``perform_at``'s and ``perform_in``'s times into
epoch seconds and refuse what no job can wait for (a naive datetime, ``inf``, ``nan``,
more than 100 years). ``arity_of`` reads from ``perform``'s signature how many
arguments it takes, once per class, so that ``JobSetter.check`` costs two comparisons
per push; ``signature_error`` explains a refusal with the signature.
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from roadie import payload as pl

if TYPE_CHECKING:
    from roadie.job import Job

#: A number below this (September 2001) is seconds from now, not a time: Sidekiq
#: reads ``perform_at(300)`` that way, so roadie does too.
RELATIVE_BELOW = 1_000_000_000


def to_epoch(when: datetime | float | int, what: str = "perform_at") -> float:
    """Epoch seconds for ``perform_at``'s ``when``; ``ValueError`` for a naive
    datetime, a non-finite number or a time more than 100 years ahead."""
    if isinstance(when, datetime):
        if when.tzinfo is None or when.utcoffset() is None:
            # datetime.timestamp() would read it as local time, and datetime.utcnow()
            # gives naive UTC: either guess is wrong for someone, silently.
            raise ValueError(
                f"{what}: {when!r} is a naive datetime (no tzinfo), so its time zone is "
                "unknown; pass an aware one, e.g. datetime.now(timezone.utc) + "
                "timedelta(hours=1), or naive.replace(tzinfo=timezone.utc) for UTC, "
                "naive.astimezone() for this machine's local time"
            )
        return pl.check_schedule_time(when.timestamp(), what)
    if isinstance(when, bool) or not isinstance(when, (int, float)):
        raise TypeError(f"a time must be a datetime or epoch seconds, got {when!r}")
    at = _as_float(when, what)
    if at < RELATIVE_BELOW:
        at += time.time()
    return pl.check_schedule_time(at, what)


def to_seconds(interval: float | int | timedelta, what: str = "perform_in") -> float:
    """Seconds for ``perform_in``'s ``interval``; ``ValueError`` for a non-finite
    number or more than 100 years. Zero or negative: the job runs at once."""
    if isinstance(interval, timedelta):
        seconds = interval.total_seconds()
    elif isinstance(interval, bool) or not isinstance(interval, (int, float)):
        raise TypeError(f"an interval must be seconds or a timedelta, got {interval!r}")
    else:
        seconds = _as_float(interval, what)
    if math.isfinite(seconds) and seconds <= pl.MAX_AHEAD_S:
        return seconds
    raise ValueError(
        f"{what}: {pl.short_repr(interval)} is not a delay a job can be scheduled with. "
        "Give a finite number of seconds (or a timedelta) of at most 100 years; zero or "
        "less runs the job at once"
    )


def _as_float(number: int | float, what: str) -> float:
    try:
        return float(number)
    except OverflowError:  # an int wider than any float: refused, naming it
        return pl.check_schedule_time(number, what)


#: What ``JobSetter.check`` compares the argument count with: the fewest and
#: the most arguments ``perform`` takes (``math.inf``: ``*args``).
Arity = tuple[float, float]
ANY_ARITY: Arity = (0, math.inf)


def perform_signature(job_cls: type[Job]) -> inspect.Signature | None:
    """``perform``'s signature without ``self`` (the wrapped function's for an
    ``@roadie.job``); None when Python cannot tell it (a C function)."""
    target = job_cls.__dict__.get("_roadie_function")
    try:
        if target is not None:
            return inspect.signature(target)
        raw = inspect.getattr_static(job_cls, "perform")
        sig = inspect.signature(job_cls.perform)
    except (TypeError, ValueError):
        return None
    if isinstance(raw, (staticmethod, classmethod)):
        return sig  # no self to drop (a classmethod's cls is bound already)
    params = list(sig.parameters.values())
    if params and params[0].kind in (inspect.Parameter.POSITIONAL_ONLY,
                                     inspect.Parameter.POSITIONAL_OR_KEYWORD):
        params = params[1:]
    return sig.replace(parameters=params)


def arity_of(job_cls: type[Job]) -> Arity:
    """The ``Arity`` of ``job_cls.perform``, kept on the class: a push then costs
    two comparisons, not a ``Signature.bind``."""
    sig = perform_signature(job_cls)
    arity = ANY_ARITY
    if sig is not None:
        least, most = 0.0, 0.0
        for p in sig.parameters.values():
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
                most += 1
                least += p.default is p.empty
            elif p.kind is p.VAR_POSITIONAL:
                most = math.inf
            elif p.kind is p.KEYWORD_ONLY and p.default is p.empty:
                least = math.inf  # job arguments are positional: it can never be given
        arity = (least, most)
    job_cls._roadie_arity = arity
    return arity


def signature_error(job_cls: type[Job], name: str, args: Sequence[Any]) -> TypeError:
    sig = perform_signature(job_cls)
    plain = sig.replace(
        parameters=[p.replace(annotation=p.empty) for p in sig.parameters.values()],
        return_annotation=sig.empty,
    ) if sig is not None else None
    try:
        if plain is not None:
            plain.bind(*args)
        why = "they do not fit"
    except TypeError as exc:
        why = str(exc)
    shown = pl.short_repr(list(args))
    return TypeError(
        f"{name}: perform{plain} cannot take the arguments {shown} ({len(args)} given): "
        f"{why}. Nothing was pushed. Job arguments are positional, in perform's order"
    )
