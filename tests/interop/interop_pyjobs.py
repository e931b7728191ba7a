"""Jobs a real ``roadie run`` process runs in the interop tests (loaded with ``-r``).

They carry the names a Ruby app pushes (``ResizeImage``, ...). Each records what
it did under ``interop:py:*`` keys, so a test counts runs exactly and compares
the arguments Python received with what Ruby pushed.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import redis

import roadie

R = redis.Redis.from_url(os.environ["REDIS_URL"])


def record(label: Any, args: list[Any], jid: str) -> None:
    pipe = R.pipeline(transaction=True)
    pipe.hincrby("interop:py:ran", str(label), 1)
    pipe.hset("interop:py:args", str(label), json.dumps(args, separators=(",", ":")))
    pipe.hset("interop:py:jid", str(label), jid)
    pipe.hset("interop:py:ran_at", str(label), repr(time.time()))
    pipe.execute()


class ResizeImage(roadie.Job, name="ResizeImage", queue="interop_py"):
    """What a Ruby app pushes with ``Sidekiq::Client.push("class" => "ResizeImage", ...)``."""

    def perform(self, label: Any, *rest: Any) -> None:
        record(label, [label, *rest], self.jid)


class FlakyJob(roadie.Job, name="FlakyJob", queue="interop_py"):
    """Fails on its first attempt, succeeds on the next."""

    def perform(self, label: str) -> None:
        attempt = R.hincrby("interop:py:attempts", label, 1)
        if attempt == 1:
            raise ValueError(f"flaky {label}: first attempt fails")
        record(label, [label], self.jid)


class AlwaysFails(roadie.Job, name="AlwaysFails", queue="interop_py"):
    def perform(self, label: str) -> None:
        R.hincrby("interop:py:attempts", label, 1)
        raise RuntimeError(f"always fails {label}")


class BlockPy(roadie.Job, name="BlockPy", queue="interop_py"):
    """Runs until the test creates ``interop:release:<label>`` (at most 60 s)."""

    def perform(self, label: str) -> None:
        R.hset("interop:py:started", label, self.jid)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not R.exists(f"interop:release:{label}"):
            time.sleep(0.02)
        record(label, [label], self.jid)


class Thumbnail(roadie.Job, name="Images::ThumbnailJob", queue="interop_py"):
    """The Python side of an ActiveJob class ``Images::ThumbnailJob``."""

    def perform(self, *args: Any) -> None:
        label = args[0]["label"] if args and isinstance(args[0], dict) else args[0]
        record(label, list(args), self.jid)
