"""``roadie periodic`` and api.periodic.PeriodicSet: schedules with their last and next run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import redis

from roadie.api.periodic import STALE_S, PeriodicEntry, PeriodicSet
from roadie.cli import main
from roadie.config import Config
from roadie.cron import Schedule, make_schedule
from roadie.keys import Keys
from roadie.middleware import Hooks
from roadie.registry import Registry
from roadie.server.outage import Outage
from roadie.server.periodic import PeriodicScheduler

K = Keys()
NIGHTLY = make_schedule("0 3 * * *", "app.Report", [1], name="nightly", tz="Europe/Paris")
RATES = make_schedule("*/5 * * * *", "app.SyncRates", ["EUR"], name="rates", queue="rates")


def scheduler(r: redis.Redis, config: Config, *schedules: Schedule) -> PeriodicScheduler:
    return PeriodicScheduler(r, config, K, Hooks(), Registry(), Outage(config.redis_url),
                             threading.Event(), schedules, identity="web-1:42:abc")


@pytest.fixture(autouse=True)
def no_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("ROADIE_"):
            monkeypatch.delenv(name)


def test_entries_with_last_and_next_run(r: redis.Redis, config: Config) -> None:
    now = time.time()
    s = scheduler(r, config, NIGHTLY, RATES)
    s.register(now=now)
    last = NIGHTLY.latest_at_or_before(now)
    assert last is not None
    assert s.push(NIGHTLY, last)[0]
    entries = PeriodicSet(config).entries(now=now)
    assert entries == [
        PeriodicEntry("nightly", "0 3 * * *", "Europe/Paris", "app.Report", "default", [1],
                      "run_once", last, NIGHTLY.next_after(now), now, "active"),
        PeriodicEntry("rates", "*/5 * * * *", "UTC", "app.SyncRates", "rates", ["EUR"],
                      "run_once", None, RATES.next_after(now), now, "active"),
    ]
    later = PeriodicSet(config).entries(now=now + STALE_S + 1)
    assert [e.state for e in later] == ["stale", "stale"]


def test_local_schedules_are_listed_after_redis_ones(r: redis.Redis, config: Config) -> None:
    now = time.time()
    scheduler(r, config, RATES).register(now=now)
    local_only = make_schedule("0 0 * * 0", "app.Weekly", name="weekly")
    entries = PeriodicSet(config).entries(local=[RATES, local_only], now=now)
    assert [(e.name, e.state, e.updated_at) for e in entries] == [
        ("rates", "active", now), ("weekly", "local", None),
    ]
    assert entries[1].next_run_at == local_only.next_after(now)


def test_remove_forgets_a_schedule(r: redis.Redis, config: Config) -> None:
    s = scheduler(r, config, RATES)
    s.register(now=time.time())
    assert s.push(RATES, 300.0)[0]
    api = PeriodicSet(config)
    assert api.remove("rates") is True
    assert api.remove("rates") is False
    assert r.exists(K.periodic, K.periodic_last) == 0


def test_cli_json(r: redis.Redis, config: Config, redis_url: str,
                  capsys: pytest.CaptureFixture[str]) -> None:
    now = time.time()
    s = scheduler(r, config, RATES)
    s.register(now=now)
    assert s.push(RATES, 600.0)[0]
    before = RATES.next_after(time.time())
    assert main(["periodic", "--redis-url", redis_url, "--json"]) == 0
    after = RATES.next_after(time.time())
    [entry] = json.loads(capsys.readouterr().out)
    assert entry["next_run_at"] in (before, after)
    del entry["next_run_at"]
    assert entry == {
        "name": "rates", "cron": "*/5 * * * *", "tz": "UTC", "class": "app.SyncRates",
        "queue": "rates", "args": ["EUR"], "missed": "run_once", "last_run_at": 600.0,
        "updated_at": now, "state": "active",
    }


def test_cli_table(r: redis.Redis, config: Config, redis_url: str,
                   capsys: pytest.CaptureFixture[str]) -> None:
    s = scheduler(r, config, NIGHTLY)
    s.register(now=time.time())
    last = datetime(2024, 7, 1, 3, tzinfo=ZoneInfo("Europe/Paris")).timestamp()
    assert s.push(NIGHTLY, last)[0]
    assert main(["periodic", "--redis-url", redis_url]) == 0
    lines = capsys.readouterr().out.splitlines()
    nxt = datetime.fromtimestamp(NIGHTLY.next_after(time.time()), ZoneInfo("Europe/Paris"))
    assert lines[0].split() == ["NAME", "CRON", "TZ", "CLASS", "QUEUE", "LAST", "RUN",
                                "NEXT", "RUN", "STATE"]
    assert lines[1].split() == [
        "nightly", "0", "3", "*", "*", "*", "Europe/Paris", "app.Report", "default",
        "2024-07-01", "03:00:00+02:00", *nxt.isoformat(" ", "seconds").split(), "active",
    ]
    assert len(lines) == 2


def test_cli_with_nothing_to_list(r: redis.Redis, redis_url: str,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["periodic", "--redis-url", redis_url]) == 0
    assert capsys.readouterr().out == (
        "no periodic jobs (none registered in Redis, none in the loaded modules)\n"
    )


def test_cli_lists_the_schedules_of_required_modules_and_config_file(
    r: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    (tmp_path / "myjobs.py").write_text(
        "import roadie\n\n"
        "class Rates(roadie.Job, name='app.Rates', queue='rates'):\n"
        "    def perform(self, currency):\n        pass\n\n"
        "roadie.periodic('*/5 * * * *', Rates, ['EUR'], tz='Europe/Paris')\n"
    )
    (tmp_path / "roadie.toml").write_text(
        '[[roadie.periodic]]\ncron = "0 3 * * *"\nclass = "app.Report"\nname = "nightly"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROADIE_")}
    env["REDIS_URL"] = redis_url
    done = subprocess.run(
        [sys.executable, "-m", "roadie", "periodic", "-r", "myjobs", "--json"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)
    assert [(e["name"], e["cron"], e["tz"], e["class"], e["queue"], e["args"], e["state"])
            for e in listed] == [
        ("app.Rates", "*/5 * * * *", "Europe/Paris", "app.Rates", "rates", ["EUR"], "local"),
        ("nightly", "0 3 * * *", "UTC", "app.Report", "default", [], "local"),
    ]


def test_cli_says_when_redis_is_unreachable(capsys: pytest.CaptureFixture[str]) -> None:
    from roadie.embedded import free_port

    url = f"redis://127.0.0.1:{free_port()}/0"
    assert main(["periodic", "--redis-url", url]) == 1
    assert capsys.readouterr().err.startswith("roadie: cannot read periodic jobs from Redis: ")
