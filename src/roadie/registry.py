"""Job names -> Job classes. Only registered classes ever run.

A payload's ``class`` string is looked up here and nowhere else: roadie never
imports a module or calls a function because a payload names it.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from roadie.errors import JobDefinitionError, UnknownJobError

if TYPE_CHECKING:
    from roadie.job import Job


class Registry:
    def __init__(self) -> None:
        self._jobs: dict[str, type[Job]] = {}
        self._lock = threading.Lock()
        #: True when some registered class has an ``async def perform``.
        self.has_async = False

    def register(self, name: str, job_cls: type[Job]) -> None:
        with self._lock:
            existing = self._jobs.get(name)
            clash = existing is not None and existing is not job_cls
            if clash and existing is not None and not _same_def(existing, job_cls):
                raise JobDefinitionError(
                    f"two job classes claim the name {name!r}: {_where(existing)} and "
                    f"{_where(job_cls)}; give one of them another name with "
                    "`class X(roadie.Job, name='...')`"
                )
            self._jobs[name] = job_cls
            self.has_async = self.has_async or job_cls.is_async

    def unregister(self, name: str) -> None:
        with self._lock:
            self._jobs.pop(name, None)
            self.has_async = any(c.is_async for c in self._jobs.values())

    def get(self, name: str) -> type[Job]:
        try:
            return self._jobs[name]
        except KeyError:
            raise UnknownJobError(
                f"unknown job class {name}; is its module loaded with -r?"
            ) from None

    def find(self, name: str) -> type[Job] | None:
        return self._jobs.get(name)

    def names(self) -> list[str]:
        return sorted(self._jobs)

    def __contains__(self, name: object) -> bool:
        return name in self._jobs


def _where(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _same_def(a: type, b: type) -> bool:
    # Re-executing a module (a reload, or a test importing it twice) defines the
    # "same" class again: let the newer definition win.
    return _where(a) == _where(b)


#: The registry every Job subclass joins unless it says otherwise.
default_registry = Registry()
