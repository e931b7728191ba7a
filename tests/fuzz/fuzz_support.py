"""Hypothesis settings and strategies shared by the fuzz tests.

The suite runs them quickly (profile ``roadie-fast``); ``make fuzz`` sets
``HYPOTHESIS_PROFILE=fuzz`` for many more examples. The profile is read here and
applied only to these tests (no global ``load_profile``), so other property tests
keep their own settings.
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from roadie.payload import encode

settings.register_profile(
    "roadie-fast", max_examples=60, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "fuzz", max_examples=5_000, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much],
)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "roadie-fast")
if PROFILE not in ("roadie-fast", "fuzz"):
    PROFILE = "roadie-fast"
#: Use as a decorator: ``@FUZZ`` above ``@given``.
FUZZ = settings(settings.get_profile(PROFILE))
#: True under ``make fuzz``: tests may afford larger inputs.
LONG = PROFILE == "fuzz"

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**63, max_value=10**40)  # Ruby Bignums
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)

json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=20,
)


def nested(value: Any, depth: int, in_dict: bool = False) -> Any:
    """``value`` wrapped ``depth`` times in a list (or a one-key object)."""
    for _ in range(depth):
        value = {"k": value} if in_dict else [value]
    return value


def raw_of(value: Any) -> bytes:
    """The compact JSON of any JSON value (encode only takes objects)."""
    return encode({"v": value})[5:-1]
