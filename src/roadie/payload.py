"""Job payloads: the JSON objects stored in Redis, exactly as Sidekiq stores them.

A *payload* is the decoded ``dict``; its *raw* form is the JSON ``bytes`` as read
from or written to Redis. Raw bytes are kept as read so that removals by value
(``LREM``/``ZREM``) always match: never re-encode a payload to remove it.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from roadie.errors import ArgumentTypeError, MalformedPayload

Payload = dict[str, Any]

#: Classes that wrap an ActiveJob job; the real class is in ``wrapped``.
ACTIVEJOB_WRAPPERS = frozenset(
    {
        "ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper",
        "Sidekiq::ActiveJob::Wrapper",
    }
)

# Epoch values above this are milliseconds (Sidekiq 8 writes integer ms);
# 1e11 seconds is the year 5138, 1e11 ms is 1973.
_MS_THRESHOLD = 1e11

# orjson reads an integer outside the 64-bit range as a float, silently losing digits
# (Ruby writes Bignums as plain digits, and encode() writes them too). Such an
# integer has at least 19 digits; entries with a run that long are read again by json.
# Found by mapping every digit to "0" and anything else to "." (bytes.translate, one
# C pass) and looking for 19 zeros: about 4 times cheaper than a regex, per job.
_DIGITS_TO_ZERO = bytes(0x30 if 0x30 <= i <= 0x39 else 0x2E for i in range(256))
_LONG_RUN = b"0" * 19
_LONG_DIGITS = re.compile(r"[0-9]{19}")


def _has_long_digits(raw: bytes | str) -> bool:
    if isinstance(raw, bytes):
        return _LONG_RUN in raw.translate(_DIGITS_TO_ZERO)
    return _LONG_DIGITS.search(raw) is not None


def new_jid() -> str:
    """24 lowercase hex characters, like Sidekiq's ``SecureRandom.hex(12)``."""
    return os.urandom(12).hex()


def now() -> float:
    """Epoch seconds as a float, the unit roadie writes into payloads."""
    return time.time()


def epoch_seconds(value: Any) -> float | None:
    """Read a payload time written by any Sidekiq version (or roadie).

    Floats are seconds (Sidekiq 6/7, roadie); integers are milliseconds
    (Sidekiq 8), unless they are small enough to be seconds.
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value / 1000.0 if value > _MS_THRESHOLD else float(value)
    if isinstance(value, float):
        return value / 1000.0 if value > _MS_THRESHOLD else value
    if isinstance(value, str):
        try:
            return epoch_seconds(float(value))
        except ValueError:
            return None
    return None


def encode(payload: Mapping[str, Any]) -> bytes:
    """Compact JSON, raw UTF-8, no NaN: what Ruby's ``JSON.generate`` writes."""
    try:
        return orjson.dumps(payload)
    except TypeError:
        # orjson refuses integers wider than 64 bits; Ruby and json do not.
        return json.dumps(
            payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode()


def decode(raw: bytes | str) -> Payload:
    """Parse a queue entry; raise ``MalformedPayload`` saying what is wrong."""
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        preview = raw[:80] if isinstance(raw, str) else raw[:80].decode("utf-8", "replace")
        raise MalformedPayload(f"queue entry is not valid JSON ({exc}): {preview!r}") from None
    if not isinstance(payload, dict):
        raise MalformedPayload(
            f"queue entry is JSON but not an object (got {type(payload).__name__})"
        )
    if _has_long_digits(raw):
        with contextlib.suppress(ValueError, RecursionError):
            payload = dict(json.loads(raw))
    cls = payload.get("class")
    if not isinstance(cls, str) or not cls:
        raise MalformedPayload("job payload has no 'class' string")
    if not isinstance(payload.get("args"), list):
        raise MalformedPayload(f"job payload of class {cls!r} has no 'args' list")
    return payload


def display_class(payload: Mapping[str, Any]) -> str:
    """The class name a person wants to see (unwraps ActiveJob)."""
    wrapped = payload.get("wrapped")
    if isinstance(wrapped, str) and wrapped:
        return wrapped
    return str(payload.get("display_class") or payload.get("class") or "?")


def _where(path: str) -> str:
    return f"args{path}"


def check_args(args: Sequence[Any], job_name: str) -> None:
    """Refuse any argument that is not JSON-native, naming it and where it sits.

    Allowed: int, finite float, str, bool, None, list/tuple, dict with str keys.
    """
    if not isinstance(args, (list, tuple)):
        raise ArgumentTypeError(
            f"{job_name}: args must be a list, got {type(args).__name__}"
        )
    # A stack walked in reverse so that the first bad value is the one reported.
    stack: list[tuple[Any, str]] = [(a, f"[{i}]") for i, a in enumerate(args)][::-1]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            _check_utf8(value, job_name, f"argument {_where(path)}")
            continue
        if value is None or isinstance(value, (bool, int)):
            continue
        if isinstance(value, float):
            if not math.isfinite(value):
                raise ArgumentTypeError(
                    f"{job_name}: argument {_where(path)} is {value!r}, which JSON cannot "
                    "carry; pass a finite number or None"
                )
            continue
        if isinstance(value, (list, tuple)):
            stack.extend([(v, f"{path}[{i}]") for i, v in enumerate(value)][::-1])
            continue
        if isinstance(value, dict):
            children: list[tuple[Any, str]] = []
            for k, v in value.items():
                if not isinstance(k, str):
                    raise ArgumentTypeError(
                        f"{job_name}: argument {_where(path)} has a non-string key {k!r} "
                        f"({type(k).__name__}); JSON object keys must be str"
                    )
                _check_utf8(k, job_name, f"a key of argument {_where(path)}")
                children.append((v, f"{path}[{k!r}]"))
            stack.extend(reversed(children))
            continue
        raise ArgumentTypeError(
            f"{job_name}: argument {_where(path)} is {_short_repr(value)} "
            f"({type(value).__module__}.{type(value).__qualname__}), which is not "
            "JSON-native. Job arguments must be int, float, str, bool, None, list or "
            "dict with str keys. Pass an id or a plain value instead of the object "
            "(e.g. user.id rather than user; an ISO string or epoch for a datetime)."
        )


def _check_utf8(text: str, job_name: str, what: str) -> None:
    # A lone surrogate (e.g. a file name decoded with errors="surrogateescape") has no
    # UTF-8 form: encode() would fail later with a bare UnicodeEncodeError.
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ArgumentTypeError(
            f"{job_name}: {what} is a str holding a lone surrogate "
            f"({text[exc.start]!r} at index {exc.start}), which UTF-8 JSON cannot carry; "
            "decode the original bytes with errors='replace', or pass them as base64 text"
        ) from None


def _short_repr(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 60 else text[:57] + "..."
