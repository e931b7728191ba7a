"""The janitor judges nobody while its own process sees Redis as unreachable.

After a Redis pause or a network stall, every liveness key may have expired. A sweep
can be the first command of its process to get through (the outage is marked over
only after it), so it must not take the other processes for dead: they are running
their jobs, and would run them twice.
"""

from __future__ import annotations

import threading

import orjson
import pytest
import redis

from roadie.config import Config
from roadie.keys import Keys
from roadie.server.janitor import Janitor
from roadie.server.outage import Outage

pytestmark = pytest.mark.redis

ME = "observer:1:aaaaaaaaaaaa"
OTHER = "owner:2:bbbbbbbbbbbb"


def test_no_recovery_while_this_process_sees_an_outage(r: redis.Redis, config: Config) -> None:
    raw = orjson.dumps({"class": "Work", "args": [], "jid": "j1", "queue": "default"})
    r.sadd("roadie:inflight-owners", OTHER)
    r.lpush(f"roadie:inflight:{OTHER}", raw)  # and no roadie:alive:<OTHER> key

    outage = Outage("redis://test")
    outage.failed(redis.TimeoutError("Timeout reading from socket"), "heartbeat")
    janitor = Janitor(r, config, Keys(), ME, outage, threading.Event())
    assert janitor.sweep() == 0
    outage.ok()  # just over: the usual wait of process_ttl_s + heartbeat_interval_s
    assert janitor.sweep() == 0
    assert r.lrange(f"roadie:inflight:{OTHER}", 0, -1) == [raw]

    # A janitor that saw no outage does take the silent owner for dead.
    fresh = Janitor(r, config, Keys(), ME, Outage("redis://test"), threading.Event())
    assert fresh.sweep() == 1
    assert r.lrange("queue:default", 0, -1) != []
