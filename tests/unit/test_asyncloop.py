"""server/asyncloop.py: the event loop thread of ``async def perform`` jobs (no Redis)."""

from __future__ import annotations

import asyncio

import pytest


@pytest.mark.parametrize(("kind", "module"), [("auto", "uvloop"), ("uvloop", "uvloop"),
                                              ("asyncio", "asyncio")])
def test_async_jobs_run_on_the_configured_event_loop(kind: str, module: str) -> None:
    pytest.importorskip("uvloop")  # a dependency of roadie except on Windows
    from roadie.server.asyncloop import LoopThread

    runner = LoopThread(kind)
    try:
        async def loop_module() -> str:
            return type(asyncio.get_running_loop()).__module__.split(".")[0]

        assert runner.run(loop_module()) == module
    finally:
        runner.stop()
