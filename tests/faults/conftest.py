"""Fixtures of the fault suite: harnesses of real ``roadie run`` processes loading
``faultjobs.py``, the TCP proxy, and the pushing client.

The process harness is tests/system/procs.py's (that folder is put on ``sys.path``).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "system"))

from procs import Harness
from tcpproxy import TcpProxy

import roadie
import roadie.current
from roadie.config import Config

FAULTJOBS = Path(__file__).resolve().parent / "faultjobs.py"

HarnessFactory = Callable[..., Harness]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    report = yield
    if report.failed:
        for harness in getattr(item, "_fault_harnesses", []):
            report.sections.append(("roadie processes", harness.report()))
    return report


@pytest.fixture
def fault_harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[HarnessFactory]:
    """``fault_harness(url, env=None)``: a Harness running faultjobs.py; its processes
    die with the test."""
    made: list[Harness] = []
    request.node._fault_harnesses = made

    def make(url: str, env: Mapping[str, str] | None = None) -> Harness:
        harness = Harness(url, tmp_path / f"procs{len(made) + 1}", env, jobs=FAULTJOBS)
        made.append(harness)
        return harness

    try:
        yield make
    finally:
        for harness in made:
            harness.close()


@pytest.fixture
def proxy_factory() -> Iterator[Callable[[int], TcpProxy]]:
    made: list[TcpProxy] = []

    def make(port: int) -> TcpProxy:
        proxy = TcpProxy("127.0.0.1", port).start()
        made.append(proxy)
        return proxy

    try:
        yield make
    finally:
        for proxy in made:
            proxy.close()


@pytest.fixture
def push_to() -> Iterator[Callable[[str], roadie.Client]]:
    """``push_to(url)`` points ``perform_async`` & co. at ``url`` for this test."""
    made: list[roadie.Client] = []
    # Each use() stacks a default client; closing the stack puts back the one before.
    defaults = contextlib.ExitStack()

    def use(url: str) -> roadie.Client:
        client = roadie.Client(Config(redis_url=url, redis_url_configured=True))
        defaults.enter_context(roadie.current.using(client))
        made.append(client)
        return client

    try:
        yield use
    finally:
        defaults.close()
        for client in made:
            client.redis.close()
