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


#: How far ahead a job may be scheduled. Anything later is a mistake (milliseconds
#: given as seconds, ``float("inf")``, ``datetime.max``) that would sit in the
#: schedule for ever and show as no date a page can render.
MAX_AHEAD_S = 100 * 365.25 * 86400.0


def check_schedule_time(at: int | float, what: str) -> float:
    """``at`` (epoch seconds) as a float if a job may be scheduled for it, else
    ``ValueError`` naming ``what`` (the job or the call), the value and the accepted
    range. A time in the past is accepted (the job runs at once); only non-finite
    and far-future times (and integers beyond any float) are not."""
    try:
        seconds = float(at)
    except OverflowError:
        seconds = math.nan
    if math.isfinite(seconds) and seconds <= time.time() + MAX_AHEAD_S:
        return seconds
    hint = ""
    if 1e11 < seconds < 1e14:
        hint = " (it looks like milliseconds: divide by 1000)"
    raise ValueError(
        f"{what}: {short_repr(at)} is not a time a job can be scheduled for{hint}. Give a "
        "finite time at most 100 years from now (epoch seconds, a timezone-aware "
        "datetime, or a delay in seconds or as a timedelta); a time in the past runs "
        "the job at once"
    )


def epoch_seconds(value: Any) -> float | None:
    """Read a payload time written by any Sidekiq version (or roadie).

    Floats are seconds (Sidekiq 6/7, roadie); integers are milliseconds
    (Sidekiq 8), unless they are small enough to be seconds.
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        try:
            return value / 1000.0 if value > _MS_THRESHOLD else float(value)
        except OverflowError:  # wider than any float: not a time
            return None
    if isinstance(value, float):
        if not math.isfinite(value):  # "nan" and "inf" strings reach here
            return None
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
        # orjson refuses integers wider than 64 bits (Ruby and json do not) and
        # nesting deeper than 254 levels (decode accepts up to 1,024).
        pass
    try:
        return json.dumps(
            payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode()
    except RecursionError:
        return _encode_deep(payload).encode()


_JSON_STR = json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode


def _encode_deep(value: Any) -> str:
    """``encode`` without recursion: for the rare value too deep for ``json.dumps``.

    A failed job nested 1,000 levels deep must still be written to the retry or dead
    set; this writes the same compact JSON with an explicit stack.
    """
    out: list[str] = []
    # Items: a value to write, or a str already written (separators, closers).
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, _Literal):
            out.append(item.text)
        elif isinstance(item, dict):
            out.append("{")
            parts: list[Any] = []
            for i, (k, v) in enumerate(item.items()):
                # A key that is not a str is written as json does: 1 -> "1", True -> "true".
                key = k if isinstance(k, str) else _JSON_STR(k)
                parts += [_Literal(("," if i else "") + _JSON_STR(key) + ":"), v]
            stack += [_Literal("}"), *reversed(parts)]
        elif isinstance(item, (list, tuple)):
            out.append("[")
            parts = []
            for i, v in enumerate(item):
                parts += [_Literal(","), v] if i else [v]
            stack += [_Literal("]"), *reversed(parts)]
        else:
            out.append(_JSON_STR(item))
    return "".join(out)


class _Literal:
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def decode(raw: bytes | str) -> Payload:
    """Parse a queue entry; raise ``MalformedPayload`` saying what is wrong."""
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        # orjson reads an integer beyond 1e308 as an infinite float and refuses it;
        # Ruby writes such Bignums, and so does encode().
        wide = _decode_wide(raw) if _has_long_digits(raw) else None
        if wide is None:
            preview = raw[:80] if isinstance(raw, str) else raw[:80].decode("utf-8", "replace")
            raise MalformedPayload(
                f"queue entry is not valid JSON ({exc}): {preview!r}"
            ) from None
        payload = wide
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


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _decode_wide(raw: bytes | str) -> Any:
    """JSON with integers too wide for orjson, or None; NaN, Infinity and text that
    UTF-8 cannot carry (lone surrogates) stay refused, as orjson refuses them."""
    try:
        value = json.loads(raw, parse_constant=_no_constant)
        if isinstance(value, dict):
            encode(value)
    except (ValueError, RecursionError):  # UnicodeError is a ValueError
        return None
    return value


def display_class(payload: Mapping[str, Any]) -> str:
    """The class name a person wants to see (unwraps ActiveJob)."""
    wrapped = payload.get("wrapped")
    if isinstance(wrapped, str) and wrapped:
        return wrapped
    shown = payload.get("display_class")
    if isinstance(shown, str) and shown:
        return shown
    cls = payload.get("class")
    return cls if isinstance(cls, str) and cls else "?"


def _where(path: str) -> str:
    return f"args{path}"


def check_args(args: Sequence[Any], job_name: str) -> None:
    """Refuse any argument that is not JSON-native, naming it and where it sits.

    Allowed: int, finite float, str, bool, None, list/tuple, dict with str keys.
    The common case (plain values, ASCII text) is checked without tracking where
    each value sits; anything else gets the full walk, which names the culprit.
    """
    if type(args) is not list and type(args) is not tuple:
        _check_args_slowly(args, job_name)
        return
    stack: list[Any] = [args]
    while stack:
        container = stack.pop()
        if type(container) is dict:
            for k in container:
                if type(k) is not str or not k.isascii():
                    _check_args_slowly(args, job_name)
                    return
            container = container.values()
        for v in container:
            t = type(v)
            if t is int or t is bool or v is None or (t is str and v.isascii()):
                continue
            if t is float and math.isfinite(v):
                continue
            if t is list or t is tuple or t is dict:
                stack.append(v)
                continue
            _check_args_slowly(args, job_name)
            return


def _check_args_slowly(args: Sequence[Any], job_name: str) -> None:
    """``check_args`` with the path to each value: raises for the first bad one."""
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
            f"{job_name}: argument {_where(path)} is {short_repr(value)} "
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


def short_repr(value: Any) -> str:
    """``repr`` cut to 60 characters, for error messages."""
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 60 else text[:57] + "..."
