"""roadie/job.py's checks at a push that need the real client: a job class defined in
``__main__`` is refused (no worker could import it) but runs in the test modes."""

from __future__ import annotations

import pytest
import redis
from integration_support import run_aio

import roadie.testing
from roadie import aio
from roadie.client import Client
from roadie.errors import JobDefinitionError
from roadie.job import Job
from roadie.registry import Registry


def test_a_job_class_of_main_is_refused_but_runs_in_test_modes(
    r: redis.Redis, client: Client, registry: Registry
) -> None:
    class Script(Job, registry=registry):
        __module__ = "__main__"  # as when defined in the script being run

        def perform(self, n: int) -> None:
            ran.append(n)

    class Named(Job, registry=registry, name="Named"):
        __module__ = "__main__"

        def perform(self) -> None: ...

    ran: list[int] = []
    assert Script.name.startswith("__main__.")
    for call in (lambda: Script.perform_async(1), lambda: Script.perform_in(60, 1),
                 lambda: Script.perform_bulk([[1]]),
                 lambda: run_aio(lambda: aio.perform_async(Script, 1))):
        with pytest.raises(JobDefinitionError, match=r"__main__\..*Script is defined in "
                           r"__main__ .*a roadie worker can never import it under that "
                           r"name: nothing was pushed\. Move the job into a module"):
            call()
    assert r.keys("*") == []
    assert Named.perform_async()  # a name the worker may know: pushed

    # The testing clients run jobs in this process, where __main__ is importable.
    with roadie.testing.fake(registry=registry):
        Script.perform_async(2)
        assert roadie.testing.drain() == 1
    with roadie.testing.inline(registry=registry):
        Script.perform_async(3)
    assert ran == [2, 3]
