"""lua/periodic_tick.lua, run directly: each tick is taken once, with its push."""

from __future__ import annotations

import threading

import redis

from roadie.keys import Keys
from roadie.scripts import Scripts

K = Keys()
LAST = K.periodic_last


def tick(scripts: Scripts, name: str, at: int, raw: bytes | None = b'{"j":1}',
         queue: str = "default") -> bool:
    return scripts.periodic_tick(LAST, K.queues, K.queue(queue), name, at, raw, queue)


def test_first_call_takes_the_tick_and_pushes(r: redis.Redis) -> None:
    scripts = Scripts(r)
    assert tick(scripts, "rates", 1000, b'{"jid":"a"}', "mail") is True
    assert r.hgetall(LAST) == {b"rates": b"1000"}
    assert r.lrange("queue:mail", 0, -1) == [b'{"jid":"a"}']
    assert r.smembers("queues") == {b"mail"}


def test_the_same_or_an_older_tick_changes_nothing(r: redis.Redis) -> None:
    scripts = Scripts(r)
    assert tick(scripts, "rates", 1000, b"first") is True
    assert tick(scripts, "rates", 1000, b"second") is False
    assert tick(scripts, "rates", 940, b"older") is False
    assert r.lrange("queue:default", 0, -1) == [b"first"]
    assert r.hget(LAST, "rates") == b"1000"
    assert tick(scripts, "rates", 1060, b"next") is True
    assert r.lrange("queue:default", 0, -1) == [b"next", b"first"]
    assert r.hget(LAST, "rates") == b"1060"


def test_schedules_do_not_share_ticks(r: redis.Redis) -> None:
    scripts = Scripts(r)
    assert tick(scripts, "a", 1000, b"a") is True
    assert tick(scripts, "b", 1000, b"b") is True
    assert r.hgetall(LAST) == {b"a": b"1000", b"b": b"1000"}
    assert r.lrange("queue:default", 0, -1) == [b"b", b"a"]


def test_a_dropped_job_still_takes_the_tick(r: redis.Redis) -> None:
    scripts = Scripts(r)
    assert tick(scripts, "rates", 1000, None) is True
    assert r.hget(LAST, "rates") == b"1000"
    assert r.exists("queue:default", "queues") == 0
    # Another process's try of the same tick (its middleware let it through) is refused.
    assert tick(scripts, "rates", 1000, b"late") is False
    assert r.exists("queue:default") == 0


def test_many_clients_racing_on_each_tick_push_it_once(redis_url: str, r: redis.Redis) -> None:
    clients = [redis.Redis.from_url(redis_url) for _ in range(8)]
    wins: list[tuple[int, int]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(clients))

    def race(index: int, client: redis.Redis) -> None:
        scripts = Scripts(client)
        for at in range(1000, 1050):
            barrier.wait()
            if tick(scripts, "rates", at, f"{at}:{index}".encode()):
                with lock:
                    wins.append((at, index))

    threads = [threading.Thread(target=race, args=(i, c)) for i, c in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for c in clients:
        c.close()
    assert sorted(at for at, _ in wins) == list(range(1000, 1050))
    pushed = r.lrange("queue:default", 0, -1)
    assert sorted(pushed) == sorted(f"{at}:{i}".encode() for at, i in wins)
    assert r.hget(LAST, "rates") == b"1049"
