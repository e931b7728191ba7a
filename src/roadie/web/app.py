"""The dashboard's routes: server-rendered pages, form actions and the JSON API.

Pages are Jinja2 templates with autoescaping on: every value from a job (class,
args, error message, backtrace) is escaped. Form actions are POST only, checked by
``security.Guard`` (cross-site refusal) and by the per-session CSRF token, and
answer with a redirect back to the page (post/redirect/get).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from importlib import resources
from typing import Any, TypeVar
from urllib.parse import quote

import orjson
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from roadie.api import JobRecord
from roadie.api.base import epoch, showable_time, time_marker
from roadie.config import Config
from roadie.web import openapi
from roadie.web.charts import history_svg
from roadie.web.data import HISTORY_DAYS, SET_ACTIONS, SETS, Data, entry_key, record_json
from roadie.web.security import (
    API_HEADER,
    CSRF_FIELD,
    AuthHook,
    Guard,
    HostAllowList,
    csrf_ok,
    csrf_token,
)

T = TypeVar("T")


def _ago(at: float | None) -> str:
    """``5m ago`` / ``in 2h`` for a time in epoch seconds (a score, or read by api)."""
    if not at:
        return "-"
    if not showable_time(at):
        return time_marker(at)
    delta = time.time() - at
    future = delta < 0
    delta = abs(delta)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if delta >= size:
            text = f"{int(delta // size)}{unit}"
            break
    else:
        text = f"{int(delta)}s"
    return f"in {text}" if future else f"{text} ago"


def _iso(at: float | None) -> str:
    if not at:
        return ""
    if not showable_time(at):
        return time_marker(at)
    return datetime.fromtimestamp(at, UTC).isoformat(" ", "seconds")


def _stored(record: JobRecord, name: str) -> tuple[float | None, Any]:
    """A payload time as seconds (None when absent or not a time) and as stored."""
    raw = record[name]
    return epoch(raw), raw


def _ago_of(record: JobRecord, name: str) -> str:
    """``_ago`` of a payload time; a stored value that is no time is shown as it is."""
    at, raw = _stored(record, name)
    if at is None and raw is not None:
        return time_marker(raw)
    return _ago(at)


def _iso_of(record: JobRecord, name: str) -> str:
    at, raw = _stored(record, name)
    if at is None and raw is not None:
        return time_marker(raw)
    return _iso(at)


def _json(value: Any, indent: bool = False) -> str:
    opt = orjson.OPT_INDENT_2 if indent else 0
    try:
        return orjson.dumps(value, option=opt | orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return repr(value)


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{seconds:.0f}s"
    return _ago(time.time() - seconds).removesuffix(" ago")


def _env() -> Environment:
    env = Environment(
        loader=PackageLoader("roadie.web", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["ago"] = _ago
    env.filters["iso"] = _iso
    env.filters["ago_of"] = _ago_of
    env.filters["iso_of"] = _iso_of
    env.filters["json"] = _json
    env.filters["duration"] = _duration
    env.globals["entry_key"] = entry_key
    return env


def _int(value: str | None, default: int = 1) -> int:
    try:
        return max(1, int(value or default))
    except ValueError:
        return default


class Dashboard:
    def __init__(self, config: Config, data: Data) -> None:
        self.config = config
        self.data = data
        self.env = _env()

    # --- helpers -------------------------------------------------------------------
    def root(self, request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    def render(self, request: Request, template_name: str, status: int = 200, /,
               **ctx: Any) -> HTMLResponse:
        template = self.env.get_template(template_name)
        html = template.render(
            root=self.root(request), csrf=csrf_token(request), path=request.url.path,
            namespace=self.config.namespace, flash=request.query_params.get("done"),
            **ctx,
        )
        return HTMLResponse(html, status)

    def back(self, request: Request, where: str, done: str | None = None) -> Response:
        url = self.root(request) + where
        if done:
            url += ("&" if "?" in url else "?") + "done=" + done
        return RedirectResponse(url, 303)

    async def form(self, request: Request) -> dict[str, list[str]] | None:
        """The POSTed form when its CSRF token is right, else None."""
        form = await request.form()
        values: dict[str, list[str]] = {}
        for key, value in form.multi_items():
            if isinstance(value, str):
                values.setdefault(key, []).append(value)
        token = values.get(CSRF_FIELD, [""])[0]
        return values if csrf_ok(request, token) else None

    async def run(self, fn: Callable[[], T]) -> T:
        return await run_in_threadpool(fn)

    # --- pages ---------------------------------------------------------------------
    async def dashboard(self, request: Request) -> Response:
        days = _int(request.query_params.get("days"), 30)
        if days not in HISTORY_DAYS:
            days = 30

        def read() -> dict[str, Any]:
            return {"stats": self.data.stats(), "history": self.data.history(days),
                    "info": self.data.redis_info()}

        got = await self.run(read)
        # The SVG is built from integers and ISO dates only (charts.py), never job data.
        svg = Markup(history_svg(got["history"]))  # noqa: S704
        return self.render(request, "dashboard.html", title="Dashboard", days=days,
                           day_choices=HISTORY_DAYS, history_chart=svg, **got)

    async def busy(self, request: Request) -> Response:
        def read() -> dict[str, Any]:
            return {"processes": self.data.processes(), "work": self.data.work()}

        return self.render(request, "busy.html", title="Busy", **(await self.run(read)))

    async def busy_post(self, request: Request) -> Response:
        form = await self.form(request)
        if form is None:
            return self.render(request, "error.html", 403, title="Refused",
                               message="The form expired; reload the page and try again.")
        action = form.get("action", [""])[0]
        identity = form.get("identity", ["*"])[0]
        if action not in ("quiet", "stop"):
            return self.render(request, "error.html", 400, title="Bad request",
                               message="Unknown action.")
        n = await self.run(lambda: self.data.signal(identity, action))
        return self.back(request, "/busy", f"{action}:{n}")

    async def queues_page(self, request: Request) -> Response:
        return self.render(request, "queues.html", title="Queues",
                           queues=await self.run(self.data.queue_list))

    async def queue_page(self, request: Request) -> Response:
        name = request.path_params["name"]
        page = _int(request.query_params.get("page"))
        result = await self.run(lambda: (self.data.queue_page(name, page),
                                         name in self.data.paused()))
        return self.render(request, "queue.html", title=f"Queue {name}", name=name,
                           page=result[0], paused=result[1])

    async def queue_post(self, request: Request) -> Response:
        name = request.path_params["name"]
        form = await self.form(request)
        if form is None:
            return self.render(request, "error.html", 403, title="Refused",
                               message="The form expired; reload the page and try again.")
        action = form.get("action", [""])[0]
        if action == "delete":
            raw = form.get("raw", [""])[0]
            n = int(await self.run(lambda: self.data.queue(name).delete(raw)))
            return self.back(request, f"/queues/{quote(name, safe='')}", f"delete:{n}")
        if action == "clear":
            await self.run(lambda: self.data.queue(name).clear())
            return self.back(request, "/queues", "clear:1")
        if action in ("pause", "resume"):
            await self.run(lambda: self.data.pause(name, action == "pause"))
            return self.back(request, "/queues", f"{action}:1")
        return self.render(request, "error.html", 400, title="Bad request",
                           message="Unknown action.")

    async def set_page(self, request: Request) -> Response:
        name = request.path_params["set"]
        page = _int(request.query_params.get("page"))
        query = request.query_params.get("q", "").strip()
        order = request.query_params.get("order")
        desc = None if order not in ("asc", "desc") else order == "desc"
        result = await self.run(lambda: self.data.set_page(name, page, query, desc))
        return self.render(request, "set.html", title=SETS[name][0], set_name=name,
                           page=result, query=query, order=order or "")

    async def entry_page(self, request: Request) -> Response:
        name = request.path_params["set"]
        key = request.path_params["key"]
        entry = await self.run(lambda: self.data.find_entry(name, key))
        if entry is None:
            return self.render(request, "error.html", 404, title="Not found",
                               message="This job is no longer in the set.")
        return self.render(request, "entry.html",
                           title=f"{SETS[name][0]}: {entry.record.display_class}",
                           set_name=name, entry=entry, key=key)

    async def set_post(self, request: Request) -> Response:
        name = request.path_params["set"]
        form = await self.form(request)
        if form is None:
            return self.render(request, "error.html", 403, title="Refused",
                               message="The form expired; reload the page and try again.")
        action = form.get("action", [""])[0]
        if action not in SET_ACTIONS:
            return self.render(request, "error.html", 400, title="Bad request",
                               message="Unknown action.")
        if form.get("all", [""])[0] == "1":
            n = await self.run(lambda: self.data.act_on_all(name, action))
        else:
            keys_ = form.get("key", [])
            n = await self.run(lambda: self.data.act_on_entries(name, keys_, action))
        return self.back(request, f"/{name}", f"{action}:{n}")

    # --- JSON API --------------------------------------------------------------------
    async def api_stats(self, request: Request) -> Response:
        return JSONResponse(await self.run(self.data.stats))

    async def api_history(self, request: Request) -> Response:
        days = min(_int(request.query_params.get("days"), 30), 180)
        return JSONResponse(await self.run(lambda: self.data.history(days)))

    async def api_queues(self, request: Request) -> Response:
        return JSONResponse(await self.run(self.data.queue_list))

    async def api_queue(self, request: Request) -> Response:
        name = request.path_params["name"]
        page = _int(request.query_params.get("page"))
        p = await self.run(lambda: self.data.queue_page(name, page))
        return JSONResponse({"name": name, "page": p.page, "total": p.total,
                             "jobs": [record_json(r) for r in p.items]})

    async def api_set(self, request: Request) -> Response:
        name = request.path_params["set"]
        page = _int(request.query_params.get("page"))
        query = request.query_params.get("q", "").strip()
        p = await self.run(lambda: self.data.set_page(name, page, query))
        return JSONResponse({
            "set": name, "page": p.page, "total": p.total,
            # A score that is no time (inf, 1e300) is null here, as record_json's
            # times are; the key keeps it exactly.
            "entries": [{"key": entry_key(e), "at": e.score if showable_time(e.score) else None,
                         **record_json(e.record)} for e in p.items],
        })

    async def api_processes(self, request: Request) -> Response:
        def read() -> dict[str, Any]:
            procs = self.data.processes()
            work = self.data.work()
            return {
                "processes": [{
                    "identity": p.identity, "hostname": p.hostname, "pid": p.pid,
                    "tag": p.tag, "started_at": p.started_at, "concurrency": p.concurrency,
                    "busy": p.busy, "beat": p.beat, "quiet": p.is_quiet, "rss_kb": p.rss_kb,
                    "queues": p.queues, "version": p.version,
                } for p in procs],
                "work": [{"identity": w.identity, "tid": w.tid, "queue": w.queue,
                          "run_at": w.run_at, **record_json(w.record)} for w in work],
            }

        return JSONResponse(await self.run(read))

    def api_refused(self, request: Request) -> Response | None:
        if request.headers.get(API_HEADER) != "1":
            return JSONResponse({"error": f"send the header {API_HEADER.title()}: 1"}, 403)
        return None

    async def api_set_action(self, request: Request) -> Response:
        refused = self.api_refused(request)
        if refused is not None:
            return refused
        name = request.path_params["set"]
        key = request.path_params["key"]
        action = request.path_params["action"]
        if action not in SET_ACTIONS:
            return JSONResponse({"error": "unknown action"}, 404)
        if key == "all":
            n = await self.run(lambda: self.data.act_on_all(name, action))
        else:
            n = await self.run(lambda: self.data.act_on_entries(name, [key], action))
        return JSONResponse({"done": n})

    async def api_queue_action(self, request: Request) -> Response:
        refused = self.api_refused(request)
        if refused is not None:
            return refused
        name = request.path_params["name"]
        action = request.path_params["action"]
        if action == "clear":
            await self.run(lambda: self.data.queue(name).clear())
        elif action in ("pause", "resume"):
            await self.run(lambda: self.data.pause(name, action == "pause"))
        else:
            return JSONResponse({"error": "unknown action"}, 404)
        return JSONResponse({"done": 1})

    async def api_process_action(self, request: Request) -> Response:
        refused = self.api_refused(request)
        if refused is not None:
            return refused
        identity = request.path_params["identity"]
        action = request.path_params["action"]
        if action not in ("quiet", "stop"):
            return JSONResponse({"error": "unknown action"}, 404)
        target = "*" if identity == "all" else identity
        return JSONResponse({"done": await self.run(lambda: self.data.signal(target,
                                                                             action))})

    async def api_openapi(self, request: Request) -> Response:
        return JSONResponse(openapi.document(self.root(request)))


def create_app(config: Config | None = None, auth: AuthHook | None = None, *,
               data: Data | None = None,
               allowed_hosts: Iterable[str] | HostAllowList | None = None) -> Guard:
    """The dashboard as an ASGI app, to serve (``roadie web``) or mount.

    ``auth`` is the hook for the host app's own authentication: called with each
    Starlette ``Request``, it returns (or awaits to) True to let the request in.

    ``allowed_hosts``: the ``Host`` names the dashboard answers to (see
    ``HostAllowList``; ``LOOPBACK_HOSTS`` for this machine only); any other gets 400.
    None (the default) checks nothing: mounted in a web framework, the framework's
    own allowed-hosts setting does it (docs/dashboard.md).
    """
    if allowed_hosts is not None and not isinstance(allowed_hosts, HostAllowList):
        allowed_hosts = HostAllowList(allowed_hosts)
    if config is None:
        from roadie.config import load

        config = load()
    d = Dashboard(config, data or Data(config))
    from roadie.web import metrics, periodic

    def known_set(
        handler: Callable[[Request], Any],
    ) -> Callable[[Request], Any]:
        async def wrapped(request: Request) -> Response:
            if request.path_params.get("set") not in SETS:
                return d.render(request, "error.html", 404, title="Not found",
                                message="No such page.")
            result: Response = await handler(request)
            return result

        return wrapped

    static = StaticFiles(directory=str(resources.files("roadie.web") / "static"))
    routes = [
        Route("/", d.dashboard),
        Route("/busy", d.busy),
        Route("/busy", d.busy_post, methods=["POST"]),
        Route("/queues", d.queues_page),
        Route("/periodic", periodic.page),
        Route("/metrics", metrics.page),
        Route("/queues/{name:path}", d.queue_page),
        Route("/queues/{name:path}", d.queue_post, methods=["POST"]),
        Route("/api/openapi.json", d.api_openapi),
        Route("/api/stats", d.api_stats),
        Route("/api/history", d.api_history),
        Route("/api/queues", d.api_queues),
        Route("/api/queues/{name}", d.api_queue),
        Route("/api/queues/{name}/{action}", d.api_queue_action, methods=["POST"]),
        Route("/api/processes", d.api_processes),
        Route("/api/periodic", periodic.api),
        Route("/api/metrics", metrics.api),
        Route("/api/processes/{identity}/{action}", d.api_process_action,
              methods=["POST"]),
        Route("/api/sets/{set}", known_set(d.api_set)),
        Route("/api/sets/{set}/{key}/{action}", known_set(d.api_set_action),
              methods=["POST"]),
        Mount("/static", static, name="static"),
        Route("/{set}", known_set(d.set_page)),
        Route("/{set}", known_set(d.set_post), methods=["POST"]),
        Route("/{set}/{key}", known_set(d.entry_page)),
    ]
    app = Starlette(routes=routes)
    app.state.roadie = d
    return Guard(app, auth, allowed_hosts)
