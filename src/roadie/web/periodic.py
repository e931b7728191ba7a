"""The dashboard's Periodic page and ``/api/periodic``: every schedule with its last
and next run, read by ``roadie.api.periodic.PeriodicSet`` (as ``roadie periodic`` does).

Schedules in Redis are those running processes registered; schedules this program
knows (``roadie.periodic`` in its loaded modules, ``[[roadie.periodic]]`` of its
config) but no process runs are listed too, with the state ``local``.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from roadie.api.periodic import PeriodicEntry, PeriodicSet
from roadie.registry import default_registry
from roadie.schedule import Schedules, default_schedules
from roadie.web.data import Data


def entries(data: Data) -> list[PeriodicEntry]:
    local = Schedules([*default_schedules, *data.config.periodic])
    return PeriodicSet(data.config, redis=data.redis, keys=data.keys).entries(
        local, registry=default_registry)


def entry_json(e: PeriodicEntry) -> dict[str, Any]:
    return {
        "name": e.name, "cron": e.cron, "tz": e.tz, "class": e.job_name, "queue": e.queue,
        "args": e.args, "missed": e.missed, "last_run_at": e.last_run_at,
        "next_run_at": e.next_run_at, "updated_at": e.updated_at, "state": e.state,
    }


async def page(request: Request) -> Response:
    d = request.app.state.roadie
    rows = await run_in_threadpool(entries, d.data)
    response: Response = d.render(request, "periodic.html", title="Periodic", entries=rows)
    return response


async def api(request: Request) -> Response:
    d = request.app.state.roadie
    rows = await run_in_threadpool(entries, d.data)
    return JSONResponse([entry_json(e) for e in rows])
