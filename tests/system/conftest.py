"""Fixtures of the system tests: real ``roadie run`` processes loading ``sysjobs.py``
(``make_harness``, ``procs``) and the pushing client (``client``).

``make_harness`` and ``use_client`` are the shared ones (tests/support/fixtures.py):
when a test fails, the tail of every process's log is attached to its report.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from support.fixtures import HarnessFactory
from support.procs import Harness

import roadie

SYSJOBS = Path(__file__).resolve().parent / "sysjobs.py"


@pytest.fixture
def harness_jobs() -> Path:
    return SYSJOBS


@pytest.fixture
def procs(make_harness: HarnessFactory, redis_url: str, r: redis.Redis) -> Harness:
    """A harness on the session's (emptied) Redis."""
    return make_harness(redis_url)


@pytest.fixture
def client(use_client: Callable[[str], roadie.Client], redis_url: str,
           r: redis.Redis) -> roadie.Client:
    """The default client, on the session's Redis."""
    return use_client(redis_url)
