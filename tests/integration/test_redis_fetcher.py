"""server.fetch.Fetcher: reliable fetch and the unit of work on real Redis."""

from __future__ import annotations

import time

import redis
from integration_support import IDENTITY, INFLIGHT, CommandLog

from roadie.config import Config
from roadie.keys import Keys
from roadie.server.fetch import Fetcher


def make(r: redis.Redis, config: Config, *queues: tuple[str, int]) -> Fetcher:
    if queues:
        config = config.replace(queues=queues)
    return Fetcher(r, config, Keys(config.namespace), IDENTITY)


def test_fetch_moves_jobs_into_this_process_inflight_list(
    r: redis.Redis, config: Config
) -> None:
    f = make(r, config, ("a", 0), ("b", 0))
    r.lpush("queue:a", b"a1")
    r.lpush("queue:b", b"b1")

    [uow] = f.fetch(1)

    assert (uow.queue_key, uow.raw) == ("queue:a", b"a1")
    assert uow.queue_name(f.keys) == "a"
    assert f.inflight == INFLIGHT
    assert r.lrange(INFLIGHT, 0, -1) == [b"a1"]
    assert r.exists("queue:a") == 0
    assert r.lrange("queue:b", 0, -1) == [b"b1"]


def test_strict_order_starves_later_queues(r: redis.Redis, config: Config) -> None:
    f = make(r, config, ("a", 0), ("b", 0))
    r.lpush("queue:a", b"a1", b"a2")
    r.lpush("queue:b", b"b1")

    taken = [(u.queue_key, u.raw) for u in f.fetch(3)]

    assert taken == [("queue:a", b"a1"), ("queue:a", b"a2"), ("queue:b", b"b1")]


def test_weighted_order_lists_every_queue_once_and_varies(
    r: redis.Redis, config: Config
) -> None:
    f = make(r, config, ("a", 1), ("b", 3))

    orders = {tuple(f.order()) for _ in range(200)}

    assert orders == {("queue:a", "queue:b"), ("queue:b", "queue:a")}


def test_fetch_blocking_takes_from_one_queue(r: redis.Redis, config: Config) -> None:
    f = make(r, config)
    r.lpush("queue:default", b"j1")

    uow = f.fetch_blocking("queue:default", 1.0)

    assert uow is not None and (uow.queue_key, uow.raw) == ("queue:default", b"j1")
    assert r.lrange(INFLIGHT, 0, -1) == [b"j1"]


def test_fetch_blocking_times_out_with_none(r: redis.Redis, config: Config) -> None:
    f = make(r, config)
    t0 = time.monotonic()

    assert f.fetch_blocking("queue:default", 0.2) is None
    assert time.monotonic() - t0 >= 0.15
    assert r.dbsize() == 0


def test_ack_removes_exactly_one_copy(r: redis.Redis, config: Config) -> None:
    f = make(r, config)
    r.lpush("queue:default", b"same", b"same")  # two identical jobs
    first, second = f.fetch(2)

    f.ack(first)

    assert r.lrange(INFLIGHT, 0, -1) == [b"same"]
    f.ack(second)
    assert r.exists(INFLIGHT) == 0


def test_retry_moves_from_inflight_to_retry_atomically(r: redis.Redis, config: Config) -> None:
    f = make(r, config)
    r.lpush("queue:default", b"job")
    [uow] = f.fetch(1)

    with CommandLog(r) as log:
        f.retry(uow, b"job+error", 1234.5)
        commands = log.commands()

    # One script (fail.lua): the LREM first, so that a full Redis runs the ZADD too.
    assert [c[0] for c in commands] == ["EVALSHA", "LREM", "ZADD"]
    assert r.exists(INFLIGHT) == 0
    assert r.zrange("retry", 0, -1, withscores=True) == [(b"job+error", 1234.5)]


def test_dead_moves_from_inflight_to_dead_and_trims(r: redis.Redis, config: Config) -> None:
    f = make(r, config.replace(dead_max_jobs=2, dead_timeout_s=3600.0))
    now = time.time()
    r.zadd("dead", {b"too-old": now - 7200, b"d1": now - 20, b"d2": now - 10})
    r.lpush("queue:default", b"job")
    [uow] = f.fetch(1)

    with CommandLog(r) as log:
        f.dead(uow, b"job+error")
        commands = log.commands()

    assert [c[0] for c in commands] == [
        "EVALSHA", "LREM", "ZADD", "ZREMRANGEBYSCORE", "ZREMRANGEBYRANK",
    ]
    assert r.exists(INFLIGHT) == 0
    assert r.zrange("dead", 0, -1) == [b"d2", b"job+error"]
    score = r.zscore("dead", b"job+error")
    assert score is not None and now <= score <= time.time()


def test_requeue_pushes_back_to_the_front_of_each_queue(r: redis.Redis, config: Config) -> None:
    f = make(r, config, ("a", 0), ("b", 0))
    r.lpush("queue:a", b"a1", b"a2")
    r.lpush("queue:b", b"b1")
    taken = f.fetch(2)  # a1 and a2
    r.lpush("queue:a", b"a3")  # arrives while they run
    b1 = f.fetch_blocking("queue:b", 1.0)
    assert b1 is not None

    assert f.requeue([*taken, b1]) == 3

    assert r.exists(INFLIGHT) == 0
    # RPUSH: the unfinished jobs, byte-identical, run before the one that came later.
    assert r.lrange("queue:a", 0, -1) == [b"a3", b"a1", b"a2"]
    assert r.lrange("queue:b", 0, -1) == [b"b1"]


def test_requeue_pushes_only_jobs_still_in_flight(r: redis.Redis, config: Config) -> None:
    f = make(r, config)
    r.lpush("queue:default", b"j1", b"j2")
    j1, j2 = f.fetch(2)
    f.ack(j1)  # j1 finished just before the shutdown pushed back the running jobs

    assert f.requeue([j1, j2]) == 1
    assert f.requeue([j1, j2]) == 0  # a repeated push-back pushes nothing twice
    assert r.lrange("queue:default", 0, -1) == [b"j2"]
    assert r.exists(INFLIGHT) == 0


def test_requeue_of_nothing_writes_nothing(r: redis.Redis, config: Config) -> None:
    f = make(r, config)

    f.requeue([])

    assert r.dbsize() == 0


def test_namespaced_fetcher_uses_prefixed_keys(r: redis.Redis, config: Config) -> None:
    f = make(r, config.replace(namespace="ns"))
    r.lpush("ns:queue:default", b"j1")
    r.lpush("queue:default", b"not-ours")

    [uow] = f.fetch(1)

    assert uow.queue_key == "ns:queue:default"
    assert uow.queue_name(f.keys) == "default"
    assert r.lrange(f"ns:{INFLIGHT}", 0, -1) == [b"j1"]
    assert r.lrange("queue:default", 0, -1) == [b"not-ours"]
