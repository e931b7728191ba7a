"""Fuzzing the payload codec, the argument check and payload times.

tests/unit/test_properties.py already covers: arbitrary bytes (up to 200) and
JSON-like text into ``decode``, round trips of shallow JSON trees, ``check_args`` on
JSON-native trees and on one buried non-native value. This file adds what a hostile
or broken producer writes: mutated real payloads (truncated, bytes flipped or
inserted, NaN and Infinity literals), nesting from 200 to 10,000 levels, integers
beyond 64 bits, ActiveJob wrappers; ``perform_async`` with arbitrary values; and the
second/millisecond rule of payload times.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from fuzz_support import FUZZ, json_values, nested, raw_of
from hypothesis import given
from hypothesis import strategies as st

import roadie
import roadie.testing
from roadie.errors import ArgumentTypeError, MalformedPayload
from roadie.payload import (
    _check_args_slowly,
    check_args,
    decode,
    display_class,
    encode,
    epoch_seconds,
)

GOOD = encode({"class": "Fuzz::Job", "args": [1, "two", {"three": [3.0]}], "jid": "a" * 24,
               "queue": "default", "retry": True, "created_at": 1795869053.437359,
               "enqueued_at": 1795869053.5})


def decode_or_malformed(raw: bytes | str) -> dict[str, Any] | None:
    """``decode`` must return a job payload or raise MalformedPayload, nothing else."""
    try:
        payload = decode(raw)
    except MalformedPayload as exc:
        message = str(exc)
        assert message.startswith(("queue entry is", "job payload")), message
        assert len(message) < 400, "the message quotes a short preview, not the entry"
        return None
    assert isinstance(payload, dict)
    assert isinstance(payload["class"], str) and payload["class"]
    assert isinstance(payload["args"], list)
    return payload


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A real payload damaged the ways storage, a proxy or a buggy producer does."""
    raw = bytearray(GOOD)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["cut", "flip", "insert", "delete", "literal"]))
        at = draw(st.integers(0, len(raw)))
        if kind == "cut":
            del raw[at:]
        elif kind == "flip" and at < len(raw):
            raw[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            raw[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del raw[at:at + draw(st.integers(1, 8))]
        else:
            literal = draw(st.sampled_from([b"NaN", b"Infinity", b"-Infinity", b"1e999",
                                            b"\xff", b"\xed\xa0\x80", b"\\ud800", b"null"]))
            raw[at:at] = literal
    return bytes(raw)


@FUZZ
@given(mutated())
def test_decode_of_damaged_payloads(raw: bytes) -> None:
    payload = decode_or_malformed(raw)
    if payload is not None:
        # Whatever decodes must encode again (it is what the dead and retry sets store).
        assert decode(encode(payload)) is not None


@FUZZ
@given(st.sampled_from([b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e400", b"nan"]),
       st.sampled_from(["args", "retry", "retry_count", "enqueued_at", "extra"]))
def test_nan_and_infinity_literals_are_malformed(literal: bytes, field: str) -> None:
    raw = b'{"class":"Fuzz::Job","args":[],"' + field.encode() + b'":' + literal + b"}"
    raw = raw.replace(b'"args":[],"args":', b'"args":')
    with pytest.raises(MalformedPayload, match="not valid JSON"):
        decode(raw)


@FUZZ
@given(st.integers(min_value=200, max_value=990), st.booleans(), json_values)
def test_deep_payloads_round_trip_up_to_the_decoders_limit(
    depth: int, in_dict: bool, leaf: Any
) -> None:
    payload = {"class": "Fuzz::Deep", "args": [nested(leaf, depth, in_dict)], "jid": "j"}
    raw = encode(payload)  # deeper than orjson writes (254): the fallbacks take over
    back = decode(raw)
    assert encode(back) == raw


@pytest.mark.parametrize("depth", [1_100, 10_000, 100_000])
def test_deeper_nesting_is_malformed_not_a_crash(depth: int) -> None:
    raw = b'{"class":"Fuzz::Deep","args":' + b"[" * depth + b"]" * depth + b"}"
    with pytest.raises(MalformedPayload, match="not valid JSON"):
        decode(raw)
    # Unclosed, as a truncated entry would be.
    with pytest.raises(MalformedPayload, match="not valid JSON"):
        decode(raw[: len(raw) // 2])


def test_encode_writes_values_too_deep_for_json_dumps() -> None:
    """A failed job nested 1,022 levels deep is still written to the retry/dead set,
    even from a thread that is already some frames deep."""
    payload = decode(b'{"class":"X","args":' + b"[" * 1_022 + b"1]" + b"]" * 1_021
                     + b',"error":{"k":"\xc3\xa9"}}')

    def deep(n: int) -> bytes:
        return encode(payload) if n == 0 else deep(n - 1)

    raw = deep(100)
    assert raw.startswith(b'{"class":"X","args":' + b"[" * 1_022 + b"1]")
    assert raw.endswith(b']],"error":{"k":"\xc3\xa9"}}')
    assert encode(decode(raw)) == raw


@FUZZ
@given(st.integers(min_value=-(10**60), max_value=10**60), json_values)
def test_big_integers_keep_every_digit(big: int, other: Any) -> None:
    payload = {"class": "Fuzz::Big", "args": [big, other], "n": {"deep": [big]}}
    back = decode(encode(payload))
    assert back["args"][0] == big and type(back["args"][0]) is int
    assert back["n"]["deep"][0] == big


@FUZZ
@given(st.one_of(json_values, st.text(max_size=30)), json_values, json_values)
def test_activejob_wrappers_with_any_inner_structure(
    wrapped: Any, inner: Any, display: Any
) -> None:
    payload = {"class": "ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper",
               "wrapped": wrapped, "args": [inner], "display_class": display}
    back = decode_or_malformed(encode(payload))
    assert back is not None
    shown = display_class(back)
    assert isinstance(shown, str) and shown
    if isinstance(wrapped, str) and wrapped:
        assert shown == wrapped


@FUZZ
@given(st.dictionaries(st.sampled_from(["class", "args", "wrapped", "display_class"]),
                       json_values), st.integers(0, 900))
def test_display_class_is_a_str_for_any_payload(payload: dict[str, Any], depth: int) -> None:
    if "display_class" in payload:  # str() of a deep list would raise RecursionError
        payload["display_class"] = nested(payload["display_class"], depth)
    shown = display_class(payload)
    assert isinstance(shown, str) and shown
    for key in ("wrapped", "display_class", "class"):
        value = payload.get(key)
        if isinstance(value, str) and value:
            assert shown == value
            break
    else:
        assert shown == "?"


# --- arguments -------------------------------------------------------------------------
class _Opaque:
    pass


non_native = st.sampled_from([
    b"bytes", bytearray(b"x"), {1, 2}, frozenset(), _Opaque(), math.nan, math.inf, 1j,
    range(2), "\ud800 lone surrogate", object,
])
any_values = st.recursive(
    json_values | non_native,
    lambda children: st.lists(children, max_size=3)
    | st.tuples(children, children)
    | st.dictionaries(st.one_of(st.text(max_size=4), st.integers(), st.none()), children,
                      max_size=3),
    max_leaves=12,
)


def native(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, (list, tuple)):
        return all(native(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and native(k) and native(v) for k, v in value.items())
    return False


class FuzzArgs(roadie.Job, name="fuzz.Args"):
    def perform(self, *args: Any) -> None:
        pass


@FUZZ
@given(st.lists(any_values, max_size=4))
def test_perform_async_accepts_exactly_the_json_native_values(args: list[Any]) -> None:
    with roadie.testing.fake():
        try:
            FuzzArgs.perform_async(*args)
        except ArgumentTypeError as exc:
            assert not native(args), f"rejected a JSON-native value: {exc}"
            message = str(exc)
            assert message.startswith("fuzz.Args: ")
            assert "args[" in message or "args must be" in message
            return
        assert native(args), f"accepted a value JSON cannot carry: {args!r}"
        (job,) = roadie.testing.jobs(FuzzArgs)
        # What was accepted is what the server will see, with tuples as lists.
        expected = decode(b'{"class":"x","args":' + raw_of(args) + b"}")["args"]
        assert decode(encode(job))["args"] == expected


@FUZZ
@given(any_values)
def test_check_args_raises_only_argument_type_error(value: Any) -> None:
    for args in ([value], (value,), value):
        try:
            check_args(args, "Fuzz")
        except ArgumentTypeError as exc:
            assert str(exc).startswith("Fuzz: ")


def _refusal(check: Any, args: Any) -> str | None:
    try:
        check(args, "Fuzz")
    except ArgumentTypeError as exc:
        return str(exc)
    return None


@FUZZ
@given(st.lists(any_values, max_size=4))
def test_the_quick_argument_check_agrees_with_the_full_walk(args: list[Any]) -> None:
    # check_args takes a path-free shortcut for plain values: same verdict, same words.
    for shape in (args, tuple(args), {"k": args}):
        wrapped = [shape]
        assert _refusal(check_args, wrapped) == _refusal(_check_args_slowly, wrapped)


# --- payload times ----------------------------------------------------------------------
SECONDS = st.floats(min_value=1e9, max_value=4e9)  # 2001 .. 2096


@FUZZ
@given(SECONDS)
def test_times_in_seconds_and_milliseconds_read_the_same(t: float) -> None:
    ms = round(t * 1000)
    assert epoch_seconds(t) == t
    assert epoch_seconds(ms) == pytest.approx(ms / 1000)
    assert epoch_seconds(float(ms)) == pytest.approx(ms / 1000)
    assert epoch_seconds(repr(t)) == t
    assert epoch_seconds(str(ms)) == pytest.approx(ms / 1000)
    assert epoch_seconds(int(t)) == float(int(t))


anything = st.one_of(
    json_values, st.floats(), st.integers(min_value=-(10**400), max_value=10**400),
    st.text(alphabet="0123456789.e+-naifINF ", max_size=12), st.booleans(),
)


@FUZZ
@given(anything)
def test_epoch_seconds_is_a_finite_float_or_none(value: Any) -> None:
    out = epoch_seconds(value)
    assert out is None or (type(out) is float and math.isfinite(out))
    if isinstance(value, bool) or value is None or isinstance(value, (list, dict)):
        assert out is None


@FUZZ
@given(st.sampled_from([b"{", b"[", b'{"class":"X","args":', b'{"class":"X","args":[],"k":']),
       st.binary(min_size=1, max_size=2_000), st.booleans())
def test_decode_of_random_bytes_after_a_json_start(start: bytes, tail: bytes, text: bool) -> None:
    raw = start + tail
    decode_or_malformed(raw.decode("utf-8", "replace") if text else raw)
