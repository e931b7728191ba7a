"""``roadie <command>``: run a process, check Redis, manage the embedded Redis."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from roadie import config as config_mod
from roadie.errors import ConfigError, RoadieError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="roadie", description="Background jobs for Python on Redis (Sidekiq-compatible)."
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--redis-url", "-u", help="Redis URL (env REDIS_URL); "
                        "embedded://DIR starts roadie's own redis-server in DIR")
        sp.add_argument("--config", "-C", help="TOML config file (default ./roadie.toml)")
        sp.add_argument("--namespace", help="key prefix, for a namespaced Sidekiq 6 install")

    run = sub.add_parser("run", help="run jobs: roadie run -r myapp.jobs -q critical,2 -q default")
    common(run)
    run.add_argument("-r", "--require", action="append", metavar="MODULE",
                     help="module (or .py file) defining your jobs; repeatable")
    run.add_argument("-q", "--queue", action="append", metavar="NAME[,WEIGHT]",
                     help="queue to fetch from, with optional weight; repeatable")
    run.add_argument("-c", "--concurrency", type=int, help="processor threads (default 10)")
    run.add_argument("-P", "--processes", type=int, metavar="N",
                     help="worker processes forked by one supervisor (default 1: no supervisor)")
    run.add_argument("--max-memory", type=int, metavar="MB", dest="max_memory_mb",
                     help="replace a worker whose RSS exceeds MB megabytes (Linux; "
                     "runs a supervisor)")
    run.add_argument("-t", "--timeout", type=float, dest="timeout_s",
                     help="seconds running jobs get to finish at shutdown (default 25)")
    run.add_argument("-g", "--tag", help="tag shown in dashboards")
    run.add_argument("--log-level", help="DEBUG, INFO (default), WARNING, ERROR, CRITICAL")
    run.add_argument("--log-format", choices=["plain", "json"])

    chk = sub.add_parser("check", help="is Redis running? version, eviction policy, latency")
    common(chk)

    per = sub.add_parser("periodic", help="list periodic jobs with their last and next run")
    common(per)
    per.add_argument("-r", "--require", action="append", metavar="MODULE",
                     help="also list the schedules these modules define; repeatable")
    per.add_argument("--json", action="store_true", help="print JSON instead of a table")

    web = sub.add_parser("web", help="serve the dashboard (needs roadie[web])")
    common(web)
    web.add_argument("--host", default="127.0.0.1",
                     help="address to bind (default 127.0.0.1: this machine only)")
    web.add_argument("--port", "-p", type=int, default=7433, help="port (default 7433)")
    web.add_argument("--password", help="require HTTP basic auth (user 'roadie'); "
                     "env ROADIE_WEB_PASSWORD")
    web.add_argument("--allowed-host", action="append", metavar="NAME", default=[],
                     help="also answer to this Host name (dash.example.com, .example.com "
                     "for it and its subdomains, '*' for any); repeatable; env "
                     "ROADIE_WEB_ALLOWED_HOSTS (comma-separated). Default: localhost and "
                     "127.0.0.1 (any IP address when --host is not a loopback address)")

    emb = sub.add_parser("embedded", help="start/stop/status of the embedded redis-server")
    emb.add_argument("action", choices=["start", "stop", "status"])
    emb.add_argument("--dir", default=".roadie/redis", help="data folder (default .roadie/redis)")
    return p


#: The flag of each setting, as error messages name it.
FLAGS = {
    "redis_url": "-u/--redis-url", "namespace": "--namespace", "require": "-r/--require",
    "queues": "-q/--queue", "concurrency": "-c/--concurrency", "processes": "-P/--processes",
    "max_memory_mb": "--max-memory", "timeout_s": "-t/--timeout", "tag": "-g/--tag",
    "log_level": "--log-level", "log_format": "--log-format",
}


def load_config(args: argparse.Namespace, extra: dict[str, Any] | None = None) -> config_mod.Config:
    cli: dict[str, Any] = {
        "redis_url": getattr(args, "redis_url", None),
        "namespace": getattr(args, "namespace", None),
        **(extra or {}),
    }
    return config_mod.load(cli=cli, config_file=getattr(args, "config", None), cli_flags=FLAGS)


def require(modules: Sequence[str]) -> None:
    """Import the user's job modules (names, or paths to .py files)."""
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    for spec in modules:
        name = spec
        if spec.endswith(".py") or os.sep in spec:
            path = Path(spec).resolve()
            if not path.exists():
                raise ConfigError(f"-r {spec}: no such file")
            sys.path.insert(0, str(path.parent))
            name = path.stem
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):
                raise ConfigError(
                    f"-r {spec}: no module named {exc.name!r} (run roadie from your project's "
                    "folder, or check PYTHONPATH)"
                ) from None
            raise


def cmd_run(args: argparse.Namespace) -> int:
    from roadie import log

    extra: dict[str, Any] = {
        "concurrency": args.concurrency,
        "processes": args.processes,
        "max_memory_mb": args.max_memory_mb,
        "timeout_s": args.timeout_s,
        "tag": args.tag,
        "log_level": args.log_level,
        "log_format": args.log_format,
    }
    if args.queue:
        extra["queues"] = tuple(config_mod.parse_queue(q) for q in args.queue)
    if args.require:
        extra["require"] = tuple(args.require)
    cfg = load_config(args, extra)
    from roadie.check import fetch_timeout_problem

    problem = fetch_timeout_problem(cfg)
    if problem:
        raise ConfigError(problem)
    log.setup(cfg.log_level, cfg.log_format)
    try:
        require(cfg.require)
    except RoadieError:
        raise
    except Exception:
        print("roadie: error while importing your job modules:", file=sys.stderr)
        traceback.print_exc()
        return 1
    from roadie import current
    from roadie.client import configure

    # Jobs that push jobs (perform_async) use this process's Redis and options,
    # unless the app's modules configured a default client of their own. (The client
    # connects on first use: nothing is opened here that a fork would share.)
    if current.configured() is None:
        configure(cfg)
    if cfg.processes > 1 or cfg.max_memory_mb:
        from roadie.server.swarm.supervisor import Swarm

        # Before forking: one refusal here, not one per worker, restarted for ever.
        _swarm_preflight(cfg)
        # Workers are forked from this process, with the modules above already loaded.
        return Swarm(cfg).run()
    from roadie.server.launcher import Launcher
    launcher = Launcher(cfg)
    code = launcher.run()
    if launcher.hard_stopped:
        # Jobs that did not finish in time were pushed back; do not wait for them.
        log.flush()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _swarm_preflight(cfg: config_mod.Config) -> None:
    """The checks of a worker's start (ACL, maxclients), once, in the supervisor."""
    import redis

    from roadie.check import preflight
    from roadie.redis.connection import connect, redact, resolve_url

    try:
        client = connect(cfg)
    except redis.RedisError:
        return  # the supervisor's own check says it in one line
    try:
        preflight(client, cfg, redact(resolve_url(cfg.redis_url)))
    except (redis.RedisError, OSError):
        pass  # unreachable: as above
    finally:
        client.close()
        client.connection_pool.disconnect()


def cmd_check(args: argparse.Namespace) -> int:
    from roadie.check import run_check

    return run_check(load_config(args), sys.stdout)


def cmd_periodic(args: argparse.Namespace) -> int:
    import json
    from datetime import datetime
    from zoneinfo import ZoneInfo

    import redis

    from roadie.api.periodic import PeriodicSet
    from roadie.registry import default_registry
    from roadie.schedule import Schedules, default_schedules

    cfg = load_config(args, {"require": tuple(args.require) if args.require else None})
    require(cfg.require)
    local = Schedules([*default_schedules, *cfg.periodic])
    try:
        entries = PeriodicSet(cfg).entries(local, registry=default_registry)
    except redis.RedisError as exc:
        raise RoadieError(f"cannot read periodic jobs from Redis: {exc}") from None
    if args.json:
        print(json.dumps([{
            "name": e.name, "cron": e.cron, "tz": e.tz, "class": e.job_name,
            "queue": e.queue, "args": e.args, "missed": e.missed,
            "last_run_at": e.last_run_at, "next_run_at": e.next_run_at,
            "updated_at": e.updated_at, "state": e.state,
        } for e in entries], indent=2))
        return 0
    if not entries:
        print("no periodic jobs (none registered in Redis, none in the loaded modules)")
        return 0

    def show(at: float | None, tz: str) -> str:
        if at is None:
            return "-"
        return datetime.fromtimestamp(at, ZoneInfo(tz)).isoformat(" ", "seconds")

    rows = [("NAME", "CRON", "TZ", "CLASS", "QUEUE", "LAST RUN", "NEXT RUN", "STATE")]
    rows += [(e.name, e.cron, e.tz, e.job_name, e.queue, show(e.last_run_at, e.tz),
              show(e.next_run_at, e.tz), e.state) for e in entries]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


def cmd_web(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from roadie.web import basic_auth, create_app
        from roadie.web.security import loopback_bind, web_allowed_hosts
    except ImportError as exc:
        raise RoadieError(f"the dashboard needs: pip install 'roadie[web]' ({exc})") from None
    password = args.password or os.environ.get("ROADIE_WEB_PASSWORD")
    extra_hosts = [*os.environ.get("ROADIE_WEB_ALLOWED_HOSTS", "").split(","),
                   *args.allowed_host]
    try:
        hosts = web_allowed_hosts(args.host, extra_hosts)
    except ValueError as exc:
        raise RoadieError(f"--allowed-host / ROADIE_WEB_ALLOWED_HOSTS: {exc}") from None
    if not password and not loopback_bind(args.host):
        print(f"roadie: warning: serving on {args.host} without a password "
              "(--password or ROADIE_WEB_PASSWORD)", file=sys.stderr)
    app = create_app(load_config(args), auth=basic_auth(password) if password else None,
                     allowed_hosts=hosts)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0


def cmd_embedded(args: argparse.Namespace) -> int:
    from roadie import embedded

    action = {"start": embedded.cmd_start, "stop": embedded.cmd_stop,
              "status": embedded.cmd_status}[args.action]
    return action(args.dir)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    commands = {"run": cmd_run, "check": cmd_check, "embedded": cmd_embedded,
                "periodic": cmd_periodic, "web": cmd_web}
    try:
        return commands[args.command](args)
    except RoadieError as exc:
        print(f"roadie: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
