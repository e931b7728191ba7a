"""Fuzzing the retry decision with the retry fields a foreign producer may write.

A payload is JSON from anywhere: ``retry`` may be a string, ``retry_count`` negative
or 30 digits long, ``retry_for`` a list, ``failed_at`` in ms or nonsense. Whatever it
holds, deciding what a failure leads to must not raise (a raise there would take the
processor thread down with the job), and the outcome must be writable to Redis.
"""

from __future__ import annotations

import math
from typing import Any

from fuzz_support import FUZZ, json_values
from hypothesis import given
from hypothesis import strategies as st

from roadie.config import Config
from roadie.payload import decode, encode
from roadie.retry import backoff_s, decide

FIELDS = ["retry", "retry_count", "retry_for", "failed_at", "retried_at", "backtrace",
          "dead", "retry_queue", "queue", "error_message", "roadie_crashes"]
odd_values = st.one_of(
    json_values,
    st.integers(min_value=-(10**40), max_value=10**40),
    st.sampled_from([True, False, None, 0, -1, 25, 2**63, 10**400, -(10**400), 1e308,
                     -1e308, 1.7e12, "yes", "0", "", [], {}]),
)


class Boom(Exception):
    pass


def raised() -> Boom:
    try:
        raise Boom("fuzzed failure")
    except Boom as exc:
        return exc


@FUZZ
@given(st.dictionaries(st.sampled_from(FIELDS), odd_values),
       st.integers(min_value=0, max_value=30))
def test_decide_never_raises_and_its_payload_is_writable(
    fields: dict[str, Any], max_retries: int
) -> None:
    payload = {"class": "Fuzz::Job", "args": [1], "jid": "f" * 24, **fields}
    payload = decode(encode(payload))  # as read from Redis
    outcome = decide(payload, raised(), "default", Config(max_retries=max_retries))
    assert outcome.action in ("retry", "dead", "discard")
    if outcome.action == "retry":
        assert math.isfinite(outcome.retry_at) and outcome.retry_at > 0
    if outcome.action != "discard" or payload.get("retry") not in (False, None):
        assert outcome.payload["error_class"].endswith("Boom")
        assert outcome.payload["error_message"] == "fuzzed failure"
    back = decode(encode(outcome.payload))
    assert back["jid"] == "f" * 24 and back["args"] == [1]


@FUZZ
@given(st.integers(min_value=-(10**30), max_value=10**30))
def test_backoff_is_a_finite_delay_for_any_count(count: int) -> None:
    delay = backoff_s(count)
    assert math.isfinite(delay) and delay >= 15
