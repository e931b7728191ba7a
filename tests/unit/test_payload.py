"""payload.py: argument check, encode/decode, time helpers, jids (no Redis)."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections import OrderedDict
from decimal import Decimal

import pytest

from roadie.errors import ArgumentTypeError, MalformedPayload
from roadie.payload import (
    check_args,
    decode,
    display_class,
    encode,
    epoch_seconds,
    new_jid,
)


class User:
    def __init__(self, user_id: int) -> None:
        self.id = user_id


# --- check_args ------------------------------------------------------------


def test_check_args_accepts_json_native_values() -> None:
    check_args(
        [
            1, -2, 2**80, 1.5, -0.0, "text", "é ✓", True, False, None, [], {},
            [1, [2, [3, {"a": [None, {"b": 1.0}]}]]],
            {"nested": {"deeper": [1, "x", None, {"k": True}]}},
        ],
        "SomeJob",
    )


def test_check_args_accepts_tuples_anywhere() -> None:
    check_args((1, (2, 3), {"t": (4, [5, (6,)])}), "SomeJob")


def test_check_args_accepts_dict_and_list_subclasses() -> None:
    check_args([OrderedDict(a=1), type("L", (list,), {})([1])], "SomeJob")


def test_check_args_rejects_a_non_list_args() -> None:
    with pytest.raises(ArgumentTypeError, match=r"SomeJob: args must be a list, got dict"):
        check_args({"a": 1}, "SomeJob")  # type: ignore[arg-type]


def test_argument_type_error_is_a_type_error() -> None:
    assert issubclass(ArgumentTypeError, TypeError)
    with pytest.raises(TypeError):
        check_args([object()], "SomeJob")


@pytest.mark.parametrize(
    ("bad", "type_name"),
    [
        (User(7), "User"),
        (object(), "builtins.object"),
        (dt.datetime(2026, 11, 28, 12, 0), "datetime.datetime"),
        (dt.date(2026, 11, 28), "datetime.date"),
        (Decimal("1.10"), "decimal.Decimal"),
        (b"raw", "builtins.bytes"),
        (bytearray(b"raw"), "builtins.bytearray"),
        ({1, 2}, "builtins.set"),
        (frozenset({1}), "builtins.frozenset"),
        (1 + 2j, "builtins.complex"),
    ],
)
def test_check_args_rejects_non_native_kinds_naming_path_and_fix(
    bad: object, type_name: str
) -> None:
    with pytest.raises(ArgumentTypeError) as info:
        check_args([1, {"when": bad}], "Mailer")
    msg = str(info.value)
    assert msg.startswith("Mailer: argument args[1]['when'] is ")
    assert type_name in msg
    assert "not JSON-native" in msg
    assert "Pass an id" in msg


def test_check_args_path_of_a_deeply_nested_value() -> None:
    with pytest.raises(ArgumentTypeError, match=re.escape("args[0]['a'][2]['b'][0]")):
        check_args([{"a": [1, 2, {"b": [b"x"]}]}], "J")


def test_check_args_path_inside_a_tuple() -> None:
    with pytest.raises(ArgumentTypeError, match=re.escape("args[2][1]")):
        check_args([0, 1, (2, {3})], "J")


def test_check_args_top_level_object_suggests_an_id() -> None:
    with pytest.raises(ArgumentTypeError) as info:
        check_args([User(1)], "Welcome")
    msg = str(info.value)
    assert "args[0]" in msg
    assert "user.id rather than user" in msg


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_check_args_rejects_non_finite_floats(bad: float) -> None:
    with pytest.raises(ArgumentTypeError) as info:
        check_args(["ok", [bad]], "J")
    msg = str(info.value)
    assert "args[1][0]" in msg
    assert "JSON cannot carry" in msg
    assert "pass a finite number or None" in msg


@pytest.mark.parametrize("key", [1, 1.5, None, True, ("a",)])
def test_check_args_rejects_non_str_dict_keys(key: object) -> None:
    with pytest.raises(ArgumentTypeError) as info:
        check_args([{"ok": {key: "v"}}], "J")
    msg = str(info.value)
    assert "args[0]['ok']" in msg
    assert "non-string key" in msg
    assert "keys must be str" in msg


def test_check_args_rejects_lone_surrogates() -> None:
    # os.fsdecode() of a non-UTF-8 file name gives one; encode() could not write it.
    name = b"caf\xe9.txt".decode("utf-8", "surrogateescape")
    with pytest.raises(ArgumentTypeError) as info:
        check_args(["ok", {"file": name}], "Upload")
    msg = str(info.value)
    assert msg.startswith("Upload: argument args[1]['file'] is a str holding a lone surrogate")
    assert "errors='replace'" in msg
    with pytest.raises(ArgumentTypeError, match=r"a key of argument args\[0\]"):
        check_args([{name: 1}], "Upload")


def test_check_args_long_repr_is_shortened() -> None:
    class Big:
        def __repr__(self) -> str:
            return "B" * 500

    with pytest.raises(ArgumentTypeError) as info:
        check_args([Big()], "J")
    assert "B" * 57 + "..." in str(info.value)
    assert "B" * 58 not in str(info.value)


def test_check_args_survives_a_raising_repr() -> None:
    class Nasty:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    with pytest.raises(ArgumentTypeError, match=r"<Nasty>"):
        check_args([Nasty()], "J")


# --- encode ------------------------------------------------------------------


def test_encode_is_compact_and_keeps_key_order() -> None:
    raw = encode({"class": "HardJob", "args": [1, "two", {"a": [1, 2]}], "retry": True})
    assert raw == b'{"class":"HardJob","args":[1,"two",{"a":[1,2]}],"retry":true}'


def test_encode_writes_raw_utf8_and_unescaped_slash() -> None:
    raw = encode({"class": "J", "args": ["héllo wörld ✓ 日本", "a/b"]})
    assert isinstance(raw, bytes)
    assert "héllo wörld ✓ 日本".encode() in raw
    assert b"\\u" not in raw
    assert b'"a/b"' in raw


def test_encode_floats_keep_a_dot() -> None:
    # Sidekiq 8 reads an integer time as milliseconds: seconds must stay floats.
    raw = encode({"created_at": 1795869053.0, "enqueued_at": 1795869053.437359})
    assert raw == b'{"created_at":1795869053.0,"enqueued_at":1795869053.437359}'


def test_encode_round_trips() -> None:
    payload = {
        "retry": 3, "queue": "default", "class": "Mod::FooJob", "jid": new_jid(),
        "args": [1, -1.25, "ü", None, True, [], {"k": [{"x": None}]}],
        "created_at": 1795869053.437359,
    }
    assert decode(encode(payload)) == payload
    assert json.loads(encode(payload)) == payload


@pytest.mark.parametrize("big", [2**64, -(2**63) - 1, 2**200, -(10**30)])
def test_encode_ints_wider_than_64_bits(big: int) -> None:
    raw = encode({"class": "J", "args": [big, 1]})
    assert raw == b'{"class":"J","args":[' + str(big).encode() + b",1]}"
    assert json.loads(raw)["args"][0] == big


@pytest.mark.parametrize("big", [2**64, -(2**63) - 1, 2**200, -(10**30)])
def test_decode_keeps_ints_wider_than_64_bits_exact(big: int) -> None:
    # Ruby writes Bignums as plain digits; they must not come back as floats.
    payload = decode(encode({"class": "J", "args": [big, [big], {"n": big}], "at": 1.5}))
    assert payload["args"] == [big, [big], {"n": big}]
    assert type(payload["args"][0]) is int
    assert payload["at"] == 1.5


def test_encode_int_dict_keys_fall_back_like_json() -> None:
    # Not reachable through check_args, but encode itself must not crash.
    assert encode({"a": {1: 2}}) == b'{"a":{"1":2}}'


# --- decode ------------------------------------------------------------------


def test_decode_accepts_str_and_bytes() -> None:
    raw = '{"class":"J","args":[1]}'
    assert decode(raw) == decode(raw.encode()) == {"class": "J", "args": [1]}


@pytest.mark.parametrize("raw", [b"not json", b"", b"{", b"{'class': 'J'}", b"\xff\xfe"])
def test_decode_rejects_non_json(raw: bytes) -> None:
    with pytest.raises(MalformedPayload, match=r"queue entry is not valid JSON"):
        decode(raw)


def test_decode_error_shows_a_short_preview() -> None:
    with pytest.raises(MalformedPayload) as info:
        decode(b"garbage " + b"x" * 500)
    msg = str(info.value)
    assert "garbage xxx" in msg
    assert len(msg) < 300


@pytest.mark.parametrize(
    ("raw", "kind"), [(b"[1,2]", "list"), (b'"s"', "str"), (b"3", "int"), (b"null", "NoneType")]
)
def test_decode_rejects_non_objects(raw: bytes, kind: str) -> None:
    with pytest.raises(MalformedPayload, match=rf"JSON but not an object \(got {kind}\)"):
        decode(raw)


@pytest.mark.parametrize(
    "raw", [b'{"args":[]}', b'{"class":"","args":[]}', b'{"class":7,"args":[]}']
)
def test_decode_rejects_a_missing_class(raw: bytes) -> None:
    with pytest.raises(MalformedPayload, match=r"has no 'class' string"):
        decode(raw)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"class":"HardJob"}',
        b'{"class":"HardJob","args":{"a":1}}',
        b'{"class":"HardJob","args":"x"}',
    ],
)
def test_decode_rejects_missing_args(raw: bytes) -> None:
    with pytest.raises(MalformedPayload, match=r"of class 'HardJob' has no 'args' list"):
        decode(raw)


def test_decode_keeps_unknown_fields() -> None:
    raw = b'{"class":"J","args":[],"bid":"b-1","tags":["x"],"custom":{"a":1}}'
    assert decode(raw)["custom"] == {"a": 1}


# --- epoch_seconds -------------------------------------------------------------


def test_epoch_seconds_reads_floats_as_seconds() -> None:
    assert epoch_seconds(1795869053.437359) == 1795869053.437359
    assert epoch_seconds(1.5) == 1.5


def test_epoch_seconds_reads_sidekiq8_integer_milliseconds() -> None:
    assert epoch_seconds(1754000000123) == pytest.approx(1754000000.123)


def test_epoch_seconds_small_integers_are_seconds() -> None:
    assert epoch_seconds(1795869053) == 1795869053.0


def test_epoch_seconds_numeric_strings_and_junk() -> None:
    assert epoch_seconds("1795869053.5") == 1795869053.5
    assert epoch_seconds("1754000000123") == pytest.approx(1754000000.123)
    for junk in (None, True, False, "soon", [1], {"a": 1}):
        assert epoch_seconds(junk) is None


# --- jid, display_class --------------------------------------------------------


def test_new_jid_is_24_lowercase_hex_and_unique() -> None:
    jids = {new_jid() for _ in range(2000)}
    assert len(jids) == 2000
    for jid in jids:
        assert re.fullmatch(r"[0-9a-f]{24}", jid)


def test_display_class_unwraps_wrapped() -> None:
    aj = {"class": "Sidekiq::ActiveJob::Wrapper", "wrapped": "SignupMailer", "args": [{}]}
    assert display_class(aj) == "SignupMailer"


def test_display_class_falls_back() -> None:
    assert display_class({"class": "HardJob", "wrapped": ""}) == "HardJob"
    assert display_class({"class": "HardJob", "wrapped": 3}) == "HardJob"
    assert display_class({"class": "X", "display_class": "Shown"}) == "Shown"
    assert display_class({}) == "?"
