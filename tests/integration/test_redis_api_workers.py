"""roadie/api/workers.py against a real Redis: the running jobs of every process, read
whatever odd value a work hash holds."""

from __future__ import annotations

import orjson
import redis

from roadie.api import Workers
from roadie.config import Config


def test_work_entries_survive_odd_values(r: redis.Redis, config: Config) -> None:
    r.sadd("processes", "p:1:a")
    r.hset("p:1:a", mapping={"info": "{}", "busy": 2})
    r.hset("p:1:a:work", mapping={
        "t1": b"not json",
        "t2": orjson.dumps({"queue": "q", "payload": "also not json", "run_at": 5}),
    })
    [work] = Workers(config).entries()
    assert work.tid == "t2" and work.queue == "q" and work.record.parse_error is not None
