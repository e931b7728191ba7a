"""Fixtures of the fault suite: real ``roadie run`` processes loading ``faultjobs.py``
(the shared ``make_harness``, tests/support/fixtures.py) and the TCP proxy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tcpproxy import TcpProxy

FAULTJOBS = Path(__file__).resolve().parent / "faultjobs.py"


@pytest.fixture
def harness_jobs() -> Path:
    return FAULTJOBS


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
