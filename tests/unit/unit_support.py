"""Helpers shared by the unit tests (not a test module itself), imported as
``from unit.unit_support import ...``: a config whose Redis is nowhere, a client that
records what a push hands it, and a job class pushed through it."""

from __future__ import annotations

from typing import Any

from roadie.config import Config
from roadie.job import Job
from roadie.registry import Registry

#: A Redis where nothing listens: a test whose client reached for Redis would fail.
NOWHERE = Config(redis_url="redis://127.0.0.1:1/0", redis_url_configured=True)

#: The registry of the job classes here.
REG = Registry()


class Recorder:
    """A client that records the items pushed through it (the ``client`` fixture,
    conftest.py)."""

    def __init__(self) -> None:
        self.pushed: list[dict[str, Any]] = []
        self.bulk: list[tuple[list[dict[str, Any]], int]] = []

    def push(self, item: dict[str, Any]) -> str:
        self.pushed.append(item)
        return f"jid-{len(self.pushed)}"

    def push_bulk(self, items: list[dict[str, Any]], batch_size: int = 1000) -> list[str | None]:
        self.bulk.append((items, batch_size))
        return [f"jid-{i}" for i in range(len(items))]


class Mail(Job, registry=REG, name="Mail", queue="mail", retry=3):
    def perform(self, user_id: int, kind: str = "welcome") -> None: ...
