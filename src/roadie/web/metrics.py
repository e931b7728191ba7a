"""The dashboard's Metrics page and ``/api/metrics``: per job class executions,
failures, total and average time, and a run-time histogram over the last hours,
read by ``roadie.api.Metrics`` from what roadie (and Sidekiq 7) processes record.
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from roadie.api.metrics import PERIODS, Metrics, MetricsResult, bucket_labels
from roadie.web.charts import histogram_svg
from roadie.web.data import Data


def _hours(request: Request) -> int:
    try:
        hours = int(request.query_params.get("hours", "1"))
    except ValueError:
        return 1
    return hours if hours in PERIODS else 1


def read(data: Data, hours: int) -> MetricsResult:
    return Metrics(data.config, redis=data.redis, keys=data.keys).query(hours)


def result_json(result: MetricsResult) -> dict[str, Any]:
    return {
        "hours": result.hours, "starts_at": result.starts_at, "ends_at": result.ends_at,
        "buckets": bucket_labels(), "histogram": result.histogram,
        "jobs": [{"class": j.name, "executions": j.executions, "failures": j.failures,
                  "total_ms": j.total_ms, "avg_ms": round(j.avg_ms, 3),
                  "histogram": j.histogram} for j in result.jobs],
    }


async def page(request: Request) -> Response:
    d = request.app.state.roadie
    hours = _hours(request)
    result = await run_in_threadpool(read, d.data, hours)
    # The SVG holds counts and fixed bucket labels only (charts.py), never job data.
    chart = Markup(histogram_svg(result.histogram, bucket_labels()))  # noqa: S704
    response: Response = d.render(request, "metrics.html", title="Metrics", hours=hours,
                                  hour_choices=PERIODS, result=result, chart=chart)
    return response


async def api(request: Request) -> Response:
    d = request.app.state.roadie
    result = await run_in_threadpool(read, d.data, _hours(request))
    return JSONResponse(result_json(result))
