"""What happens when a job fails: backoff, the retry set, the dead set.

Sidekiq's rules, kept exactly (see SIDEKIQ-WIRE.md section 7):

* ``retry: True`` -> up to ``max_retries`` (25) retries; ``retry: N`` -> N retries;
  ``retry: False`` -> no retry and no dead entry (death handlers still run);
  ``retry: 0`` -> no retry, straight to the dead set (0 is not "false").
* delay = ``count**4 + 15`` seconds plus jitter ``randrange(10 * (count + 1))``
  (Sidekiq 8's jitter), where count is the new ``retry_count`` (0 after the first failure).
* the dead set keeps the newest ``dead_max_jobs`` entries of the last ``dead_timeout_s``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import random
import traceback
import zlib
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from roadie.config import Config
from roadie.keys import Keys
from roadie.payload import Payload, now

log = logging.getLogger("roadie")

MAX_ERROR_MESSAGE = 10_000
#: Retry counts above this give the same backoff (10,000**4 s is 300 million years).
MAX_BACKOFF_COUNT = 10_000

#: The class of a dead-set entry that holds a queue entry which was not a job.
MALFORMED_CLASS = "roadie.MalformedEntry"

#: Field roadie adds to a payload each time it recovers the job from a dead process.
CRASH_FIELD = "roadie_crashes"

Action = Literal["retry", "dead", "discard"]


def backoff_s(count: int) -> float:
    """Seconds before retry number ``count + 1`` (count = new retry_count)."""
    # A payload's retry_count may be anything an integer can be (negative, 30 digits):
    # clamp it so that the delay stays a float and the jitter range positive.
    count = min(max(count, 0), MAX_BACKOFF_COUNT)
    return float(count**4 + 15 + random.randrange(10 * (count + 1)))


def error_class_name(exc: BaseException) -> str:
    cls = type(exc)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def safe_message(exc: BaseException) -> str:
    """``str(exc)``, even when ``__str__`` itself raises or returns garbage."""
    try:
        text = str(exc)
    except BaseException:
        text = f"<{error_class_name(exc)} whose str() raised>"
    if not isinstance(text, str):
        text = repr(text)
    text = text.encode("utf-8", "replace").decode("utf-8")
    return text[:MAX_ERROR_MESSAGE]


def backtrace_lines(exc: BaseException, limit: int | None) -> list[str]:
    frames = traceback.extract_tb(exc.__traceback__)
    # Ruby order: innermost frame first, "file:line:in `method'".
    lines = [f"{f.filename}:{f.lineno}:in `{f.name}'" for f in reversed(frames)]
    return lines if limit is None else lines[:limit]


def compress_backtrace(lines: list[str]) -> str:
    """base64(zlib(JSON array)), as Sidekiq stores ``error_backtrace``."""
    return base64.b64encode(zlib.compress(orjson.dumps(lines))).decode()


def decompress_backtrace(value: str) -> list[str]:
    data = orjson.loads(zlib.decompress(base64.b64decode(value)))
    return [str(x) for x in data] if isinstance(data, list) else []


def record_error(payload: Payload, exc: BaseException, queue: str, at: float) -> None:
    """Add Sidekiq's error fields to ``payload`` in place (one failed attempt)."""
    retry_queue = payload.get("retry_queue")
    payload["queue"] = retry_queue if isinstance(retry_queue, str) and retry_queue else queue
    payload["error_message"] = safe_message(exc)
    payload["error_class"] = error_class_name(exc)
    count = payload.get("retry_count")
    if isinstance(count, int) and not isinstance(count, bool):
        payload["retried_at"] = at
        # Written by anyone (Sidekiq, a hand-edited entry): a negative count would buy
        # extra retries, a huge one is past any limit.
        payload["retry_count"] = min(max(count, 0), MAX_BACKOFF_COUNT) + 1
    else:
        payload["failed_at"] = at
        payload["retry_count"] = 0
    payload.pop(CRASH_FIELD, None)
    bt = payload.get("backtrace")
    if bt is True or (isinstance(bt, int) and not isinstance(bt, bool) and bt > 0):
        limit = None if bt is True else int(bt)
        payload["error_backtrace"] = compress_backtrace(backtrace_lines(exc, limit))


def malformed_entry(raw: bytes, reason: str, queue: str, at: float) -> bytes:
    """A queue entry that is not a job, as a dead-set entry that says why: Sidekiq's
    fields (``class`` ``roadie.MalformedEntry``, ``error_class``, ``error_message``,
    ``failed_at``), its ``jid`` and ``queue`` when it had string ones, and the entry
    itself byte for byte in ``raw`` (its text) or ``raw_base64`` (when it is not
    UTF-8). Retried from a dashboard, it fails again (no such class), and stays here.
    """
    found: Any = None
    with contextlib.suppress(orjson.JSONDecodeError):
        found = orjson.loads(raw)
    original = found if isinstance(found, dict) else {}
    jid, where = original.get("jid"), original.get("queue")
    entry: dict[str, Any] = {
        "class": MALFORMED_CLASS,
        "args": [],
        # Without a jid of its own, one made from its bytes: the same entry buried twice
        # (two pollers, a retried call) is one jid.
        "jid": jid if isinstance(jid, str) and jid else hashlib.blake2b(
            raw, digest_size=12).hexdigest(),
        "queue": where if isinstance(where, str) and where else queue,
        "retry": 0,
        "created_at": at,
        "failed_at": at,
        "error_class": "roadie.errors.MalformedPayload",
        "error_message": reason[:MAX_ERROR_MESSAGE],
    }
    try:
        entry["raw"] = raw.decode("utf-8")
    except UnicodeDecodeError:
        entry["raw_base64"] = base64.b64encode(raw).decode()
    return orjson.dumps(entry)


def malformed_original(payload: Payload) -> bytes | None:
    """The queue entry a ``malformed_entry`` holds, byte for byte (None: not one)."""
    if payload.get("class") != MALFORMED_CLASS:
        return None
    if isinstance(payload.get("raw"), str):
        return str(payload["raw"]).encode("utf-8")
    if isinstance(payload.get("raw_base64"), str):
        return base64.b64decode(str(payload["raw_base64"]))
    return None


@dataclass(frozen=True, slots=True)
class Outcome:
    action: Action
    payload: Payload
    #: Score for the retry set (epoch seconds) when action == "retry".
    retry_at: float = 0.0
    #: True when the job's retries ran out (or it was killed): death handlers run.
    died: bool = False


def decide(
    payload: Payload,
    exc: BaseException,
    queue: str,
    config: Config,
    job_cls: Any = None,
) -> Outcome:
    """Decide what a failed attempt leads to; mutates ``payload`` (error fields)."""
    retry = payload.get("retry", True)
    if retry is False or retry is None:
        return Outcome("discard", payload, died=True)
    at = now()
    record_error(payload, exc, queue, at)
    count = int(payload["retry_count"])
    retry_for = payload.get("retry_for")
    if isinstance(retry_for, (int, float)) and not isinstance(retry_for, bool):
        from roadie.payload import epoch_seconds

        first = epoch_seconds(payload.get("failed_at")) or at
        try:
            exhausted = first + float(retry_for) < at
        except OverflowError:  # an integer wider than a float: "retry for ever"
            exhausted = retry_for < 0
    else:
        is_count = isinstance(retry, int) and not isinstance(retry, bool)
        limit = retry if is_count else config.max_retries
        exhausted = count >= limit
    if not exhausted:
        delay: Any = None
        if job_cls is not None:
            try:
                delay = job_cls.retry_in(count, exc, payload)
            except Exception:
                log.exception("%s.retry_in raised; using the default backoff", job_cls.name)
                delay = None
        if delay == "kill":
            exhausted = True
        elif delay == "discard":
            return Outcome("discard", payload, died=False)
        elif isinstance(delay, (int, float)) and not isinstance(delay, bool) and delay > 0:
            jitter = random.randrange(10 * (min(max(count, 0), MAX_BACKOFF_COUNT) + 1))
            return Outcome("retry", payload, retry_at=at + delay + jitter)
        else:
            return Outcome("retry", payload, retry_at=at + backoff_s(count))
    if job_cls is not None:
        try:
            if job_cls.retries_exhausted(payload, exc) == "discard":
                return Outcome("discard", payload, died=True)
        except Exception:
            log.exception("%s.retries_exhausted raised", job_cls.name)
    if payload.get("dead") is False:
        return Outcome("discard", payload, died=True)
    return Outcome("dead", payload, died=True)


def add_dead(pipe: Any, keys: Keys, config: Config, raw: bytes, at: float | None = None) -> None:
    """Queue the morgue commands on ``pipe``: add, then trim by age and size."""
    t = now() if at is None else at
    pipe.zadd(keys.dead, {raw: t})
    pipe.zremrangebyscore(keys.dead, "-inf", f"({t - config.dead_timeout_s!r}")
    pipe.zremrangebyrank(keys.dead, 0, -(config.dead_max_jobs + 1))
