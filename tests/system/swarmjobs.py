"""A job for the ``-P`` system tests (loaded with ``-r swarmjobs.py`` next to sysjobs.py).

``Hog`` makes its worker's resident memory grow by ``mb`` megabytes (the pages are
written, so they count in VmRSS) and keeps it until the process exits, then stays
running ``seconds`` seconds so that the memory limit catches it mid-job.
"""

from __future__ import annotations

import os
import time

import sysjobs

import roadie

#: Memory kept alive by Hog jobs of this process.
_kept: list[bytearray] = []


class Hog(roadie.Job, name="swarm.Hog"):
    def perform(self, mb: int, seconds: float) -> None:
        sysjobs._count(self)
        _kept.append(bytearray(b"\x01") * (mb * 1024 * 1024))
        sysjobs._event(self, "hog-start")
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(0.05)
        sysjobs._event(self, "hog-done")


if os.environ.get("SWARM_EXIT_AT_START"):
    # A worker that dies as it starts, every time: the supervisor must back off.
    @roadie.hooks.on("startup")
    def _exit_at_start() -> None:
        os._exit(int(os.environ["SWARM_EXIT_AT_START"]))
