"""roadie.api reading values no writer should store, written straight into a real
Redis, across modules: process and work hashes (api/processes.py, api/workers.py) and
periodic hashes (api/periodic.py) with ``inf``. Nothing raises; what is no time reads
as None. Each module's own hostile values are in its test module
(test_redis_api_records.py, test_redis_api_sorted_sets.py)."""

from __future__ import annotations

import json

import orjson
import redis
from integration_support import job_with_times

from roadie.api import ProcessSet, Workers
from roadie.api.periodic import PeriodicSet
from roadie.config import Config
from roadie.keys import Keys

KEYS = Keys()


def test_process_work_and_periodic_hashes_with_inf(r: redis.Redis, config: Config) -> None:
    r.sadd("processes", "p:1:a")
    r.hset("p:1:a", mapping={
        "info": json.dumps({"identity": "p:1:a", "started_at": 1e300, "hostname": "p"}),
        "busy": 1, "beat": "inf", "quiet": "false", "rss": "nan"})
    r.hset("p:1:a:work", "t1", orjson.dumps({"queue": "default", "run_at": 1e300,
                                             "payload": orjson.loads(job_with_times("w", "x"))}))
    [proc] = ProcessSet(config).processes()
    assert proc.beat == 0.0 and proc.started_at is None and proc.rss_kb == 0
    [work] = Workers(config).entries()
    assert work.run_at == 0.0 and work.jid == "w"
    r.hset(KEYS.periodic, "nightly", orjson.dumps({"cron": "0 3 * * *", "class": "Night"}))
    r.hset(KEYS.periodic_last, "nightly", "inf")
    [entry] = PeriodicSet(config).entries()
    assert entry.last_run_at is None and entry.next_run_at is not None
