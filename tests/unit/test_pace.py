"""``roadie.server.pace.Pace``: a processor's moving averages of its job durations."""

from __future__ import annotations

import time

import pytest

from roadie.server.pace import QUICK_WEIGHT, STEADY_WEIGHT, Pace


def test_a_new_pace_has_timed_nothing() -> None:
    pace = Pace()
    assert (pace.job_s, pace.job_steady_s) == (0.0, 0.0)


def test_each_run_moves_both_averages_by_their_weights() -> None:
    pace = Pace()
    took = 0.2
    pace.timed(time.monotonic() - took)

    # From 0, one run of ``took`` s moves each average by its weight of it.
    assert pace.job_s == pytest.approx(QUICK_WEIGHT * took, rel=0.05)
    assert pace.job_steady_s == pytest.approx(STEADY_WEIGHT * took, rel=0.05)


def test_the_steady_average_follows_a_change_more_slowly() -> None:
    pace = Pace()
    for _ in range(5):
        pace.timed(time.monotonic() - 0.1)

    # Both rise toward 0.1 s; the quick one is nearer after a few runs.
    assert 0 < pace.job_steady_s < pace.job_s < 0.1 + 0.01
