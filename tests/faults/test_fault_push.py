"""Scenario 6: pushing while Redis is away.

``perform_async`` and ``perform_bulk`` raise ``roadie.PushError`` (a
``RedisUnavailable``) that says what was written. One batch (one MULTI) is all or
nothing; a bulk push of several batches cut in the middle keeps the batches that
Redis confirmed: the error lists their jids, and those run, exactly once each.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import faultjobs
import pytest
import redis
from fault_support import FAULT_ENV, account, jobs_left, scale, soak, wait_drained
from procs import Harness
from tcpproxy import TcpProxy

import roadie
from roadie.embedded import RedisServer

pytestmark = pytest.mark.system

BATCH = 1000


def test_push_while_redis_is_down_raises_a_clear_error(
    redis_server: RedisServer, proxy_factory: Callable[[int], TcpProxy],
    push_to: Callable[[str], roadie.Client],
) -> None:
    proxy = proxy_factory(redis_server.port)
    client = push_to(proxy.url)
    client.config = client.config.replace(connect_timeout_s=1.0, socket_timeout_s=1.0)
    proxy.cut()
    with pytest.raises(roadie.PushError, match=r"could not push faults\.Count .*did not "
                       r"answer .*may or may not have been written") as info:
        faultjobs.Count.perform_async(1)
    assert isinstance(info.value, roadie.RedisUnavailable)
    assert len(info.value.unconfirmed) == 1 and not info.value.written
    with pytest.raises(roadie.PushError, match=r"bulk push interrupted: .* 0 of 3 jobs were "
                       "written") as bulk:
        faultjobs.Count.perform_bulk([[1], [2], [3]])
    assert bulk.value.written == [] and len(bulk.value.unconfirmed) == 3
    proxy.restore()
    assert faultjobs.Count.perform_async(1)
    r = redis_server.client()
    # Nothing of the failed pushes was written: Redis never heard of them.
    assert r.llen("queue:default") == 1
    r.close()


def test_bulk_push_cut_in_the_middle_keeps_whole_batches(
    redis_server: RedisServer, proxy_factory: Callable[[int], TcpProxy],
    fault_harness: Callable[..., Harness], push_to: Callable[[str], roadie.Client],
) -> None:
    url = redis_server.url
    r = redis.Redis.from_url(url)
    proxy = proxy_factory(redis_server.port)
    push_to(proxy.url)
    jobs = scale(20) * BATCH
    cut_at = jobs // 4
    proxy.delay(2)  # slow enough for the watcher below to cut mid-push

    def cut_when_started() -> None:
        deadline = time.monotonic() + 60
        while r.llen("queue:default") < cut_at and time.monotonic() < deadline:
            time.sleep(0.001)
        proxy.cut()

    watcher = threading.Thread(target=cut_when_started, daemon=True)
    watcher.start()
    t0 = time.monotonic()
    with pytest.raises(roadie.PushError) as info:
        faultjobs.Count.perform_bulk([[1] for _ in range(jobs)], batch_size=BATCH)
    watcher.join(10)
    err = info.value
    print(f"bulk push of {jobs} cut: {len(err.written)} written, "
          f"{len(err.unconfirmed)} unconfirmed, {len(err.not_written)} not sent: {err}")
    queued = jobs_left(r)["queues"]
    assert len(err.written) + len(err.unconfirmed) + len(err.not_written) == jobs
    assert len(err.written) % BATCH == 0 and 0 < len(err.written) < jobs
    assert len(err.unconfirmed) == BATCH
    # Whole batches only: the written ones, plus the unconfirmed one if it landed.
    assert queued in (set(err.written), set(err.written) | set(err.unconfirmed))
    assert not queued & set(err.not_written)

    proxy.restore()
    procs = fault_harness(url, FAULT_ENV)
    procs.spawn("-c", "10", r=r)
    wait_drained(r, queued, soak(60, 300))
    acct = account(r, "bulk push cut mid-way", queued, t0, batches_written=len(err.written)
                   // BATCH, unconfirmed_landed=bool(queued & set(err.unconfirmed)),
                   not_sent=len(err.not_written))
    acct.check(max_duplicates=0)
    assert acct.runs == len(queued)
    r.close()


def test_connection_reset_after_exec_does_not_write_a_batch_twice(
    redis_server: RedisServer, proxy_factory: Callable[[int], TcpProxy],
    push_to: Callable[[str], roadie.Client],
) -> None:
    r = redis.Redis.from_url(redis_server.url)
    proxy = proxy_factory(redis_server.port)
    push_to(proxy.url)
    jobs = 10 * BATCH
    proxy.delay(2)

    def reset_mid_push() -> None:  # drop the connections once; new ones are welcome
        deadline = time.monotonic() + 30
        while r.llen("queue:default") < 3 * BATCH and time.monotonic() < deadline:
            time.sleep(0.0005)
        proxy.cut()
        proxy.restore()

    watcher = threading.Thread(target=reset_mid_push, daemon=True)
    watcher.start()
    try:
        faultjobs.Count.perform_bulk([[1] for _ in range(jobs)], batch_size=BATCH)
    except roadie.PushError:
        pass  # the reset hit before EXEC: nothing doubled, the assertion below holds
    watcher.join(10)
    raws = r.lrange("queue:default", 0, -1)
    jids = [faultjobs.orjson.loads(raw)["jid"] for raw in raws]
    print(f"{len(raws)} entries queued for {len(set(jids))} distinct jobs")
    assert len(jids) == len(set(jids))
    r.close()
