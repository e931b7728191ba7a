"""Property tests (hypothesis) of the argument check, the codec and queue specs."""

from __future__ import annotations

import math
from datetime import datetime
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from roadie.config import parse_queue
from roadie.errors import ArgumentTypeError, ConfigError, MalformedPayload
from roadie.payload import check_args, decode, encode, new_jid

_settings = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)

json_trees = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=30,
)


def _same(a: Any, b: Any) -> bool:
    """Equality that also checks types (1 vs 1.0 vs True) all the way down."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, float):
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    return bool(a == b)


@_settings
@given(st.lists(json_trees, max_size=6))
def test_check_args_never_raises_on_json_native_trees(args: list[Any]) -> None:
    check_args(args, "PropJob")
    check_args(tuple(args), "PropJob")


non_native = st.sampled_from(
    [b"x", {1}, Decimal("1.5"), datetime(2026, 1, 1), object(), math.nan, -math.inf, 1j]
)
wrappers = st.lists(st.one_of(st.just(None), st.text(max_size=5)), max_size=4)


@_settings
@given(st.lists(json_trees, max_size=4), non_native, wrappers)
def test_check_args_names_the_path_of_a_buried_bad_value(
    good: list[Any], bad: Any, chain: list[str | None]
) -> None:
    value, path = bad, ""
    for step in chain:  # None wraps in a list, a str wraps in a dict under that key
        if step is None:
            value, path = [value], f"[0]{path}"
        else:
            value, path = {step: value}, f"[{step!r}]{path}"
    args = [*good, value]
    try:
        check_args(args, "PropJob")
    except ArgumentTypeError as exc:
        assert str(exc).startswith(f"PropJob: argument args[{len(good)}]{path} ")
    else:
        raise AssertionError(f"{bad!r} was accepted")


@_settings
@given(st.lists(json_trees, max_size=6), st.text(min_size=1, max_size=20))
def test_encode_decode_round_trips_inside_a_payload(args: list[Any], queue: str) -> None:
    payload = {
        "retry": True,
        "queue": queue,
        "args": args,
        "class": "Prop::Job",
        "jid": new_jid(),
        "created_at": 1795869053.437359,
    }
    raw = encode(payload)
    assert isinstance(raw, bytes)
    back = decode(raw)
    assert _same(back, payload), (payload, back)
    # The raw form is stable: encoding what was read gives the same bytes.
    assert encode(back) == raw
    # And decoding from str works just as well.
    assert _same(decode(raw.decode()), payload)


@_settings
@given(st.binary(max_size=200))
def test_decode_raises_only_malformed_payload_on_arbitrary_bytes(raw: bytes) -> None:
    try:
        payload = decode(raw)
    except MalformedPayload as exc:
        assert str(exc)
    else:
        assert isinstance(payload, dict)
        assert isinstance(payload["class"], str)
        assert isinstance(payload["args"], list)


json_texts = st.builds(
    lambda obj: encode({"v": obj})[5:-1].decode(), json_trees
)


@_settings
@given(
    st.one_of(
        json_texts,
        st.dictionaries(st.sampled_from(["class", "args", "jid", "x"]), json_trees).map(
            lambda d: encode(d).decode()
        ),
        st.text(max_size=100),
    )
)
def test_decode_raises_only_malformed_payload_on_json_like_text(raw: str) -> None:
    for form in (raw, raw.encode("utf-8", "surrogatepass")):
        try:
            payload = decode(form)
        except MalformedPayload:
            continue
        assert isinstance(payload["class"], str) and payload["class"]
        assert isinstance(payload["args"], list)


@_settings
@given(st.text(max_size=40))
def test_parse_queue_on_arbitrary_text(spec: str) -> None:
    try:
        name, weight = parse_queue(spec)
    except ConfigError as exc:
        assert str(exc)
        return
    assert isinstance(name, str) and name
    assert name == name.strip()
    assert isinstance(weight, int) and weight >= 0


@_settings
@given(
    st.text(alphabet=st.characters(blacklist_characters=",", blacklist_categories=("Cs",)))
    .map(str.strip)
    .filter(bool),
    st.integers(min_value=0, max_value=10**6),
)
def test_parse_queue_round_trips_well_formed_specs(name: str, weight: int) -> None:
    assert parse_queue(f"{name},{weight}") == (name, weight)
    assert parse_queue([name, weight]) == (name, weight)
    assert parse_queue(name) == (name, 0)
