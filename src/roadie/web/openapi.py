"""The OpenAPI 3.1 document of the dashboard's JSON API (``/api/openapi.json``)."""

from __future__ import annotations

from typing import Any

_SET = {"name": "set", "in": "path", "required": True,
        "schema": {"type": "string", "enum": ["retries", "scheduled", "dead"]}}
_PAGE = {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1}}
_HEADER = {"name": "X-Roadie", "in": "header", "required": True,
           "description": "Must be 1: a header no other site can send (CSRF guard).",
           "schema": {"type": "string", "enum": ["1"]}}


def _get(summary: str, params: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"get": {"summary": summary, "parameters": params or [],
                    "responses": {"200": {"description": "JSON",
                                          "content": {"application/json": {}}}}}}


def _post(summary: str, params: list[dict[str, Any]]) -> dict[str, Any]:
    return {"post": {"summary": summary, "parameters": [*params, _HEADER],
                     "responses": {
                         "200": {"description": '{"done": <count>}',
                                 "content": {"application/json": {}}},
                         "403": {"description": "cross-site request or no X-Roadie header"},
                     }}}


def _path(name: str, values: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if values:
        schema["enum"] = values
    return {"name": name, "in": "path", "required": True, "schema": schema}


def document(root: str = "") -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "roadie dashboard API", "version": "1"},
        "servers": [{"url": root or "/"}],
        "paths": {
            "/api/stats": _get("Totals: processed, failed, busy, enqueued, sets, latency"),
            "/api/metrics": _get(
                "Per job class executions, failures, total and average ms, and the "
                "run-time histogram (26 buckets) over the last hours",
                [{"name": "hours", "in": "query",
                  "schema": {"type": "integer", "enum": [1, 2, 4, 8]}}]),
            "/api/history": _get("Daily processed and failed counts", [
                {"name": "days", "in": "query", "schema": {"type": "integer"}}]),
            "/api/queues": _get("Every queue with size, latency and paused flag"),
            "/api/queues/{name}": _get("A page of a queue's jobs, newest first",
                                       [_path("name"), _PAGE]),
            "/api/queues/{name}/{action}": _post("Clear, pause or resume a queue", [
                _path("name"), _path("action", ["clear", "pause", "resume"])]),
            "/api/sets/{set}": _get("A page of the retry, scheduled or dead set", [
                _SET, _PAGE, {"name": "q", "in": "query", "schema": {"type": "string"},
                              "description": "text to find in the job's JSON"}]),
            "/api/sets/{set}/{key}/{action}": _post(
                "Act on one entry (key from the listing) or on all (key 'all')",
                [_SET, _path("key"), _path("action", ["retry", "enqueue", "delete",
                                                      "kill"])]),
            "/api/processes": _get("Live processes and the jobs running now"),
            "/api/periodic": _get(
                "Periodic schedules: cron, tz, class, queue, last and next run, state"),
            "/api/processes/{identity}/{action}": _post(
                "Quiet or stop one process (identity) or every one ('all')",
                [_path("identity"), _path("action", ["quiet", "stop"])]),
        },
    }
