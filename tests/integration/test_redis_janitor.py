"""server.janitor.Janitor: in-flight jobs of dead processes go back to their queues."""

from __future__ import annotations

import threading
import time
from typing import Any

import orjson
import redis
from integration_support import loads

from roadie.client import Client
from roadie.config import Config
from roadie.keys import Keys
from roadie.middleware import Hooks
from roadie.retry import malformed_original
from roadie.server.fetch import Fetcher
from roadie.server.janitor import CHUNK, Janitor
from roadie.server.outage import Outage
from roadie.server.state import State, run_mark

ME = "survivor:1:111111111111"
DEAD = "crashed:2:222222222222"
LIVE = "running:3:333333333333"


def janitor(r: redis.Redis, config: Config) -> Janitor:
    return Janitor(r, config, Keys(config.namespace), ME, Outage("redis://test"),
                   threading.Event())


def in_flight(r: redis.Redis, config: Config, owner: str, *jobs: list[Any]) -> list[bytes]:
    """Push jobs and let ``owner`` fetch them all, as a process that then died."""
    client = Client(config, hooks=Hooks())
    for args in jobs:
        client.push({"args": args, "class": "Work"})
    r.sadd("roadie:inflight-owners", owner)
    fetched = Fetcher(r, config, Keys(config.namespace), owner).fetch(len(jobs))
    return [u.raw for u in fetched]


def died_running(r: redis.Redis, owner: str, *raws: bytes, reason: str = "it died") -> None:
    """The death record ``owner``'s pulse writes: these jobs were running."""
    running = [run_mark(raw).decode("latin-1") for raw in raws]
    r.set(f"roadie:died:{owner}", orjson.dumps({"running": running, "reason": reason}))


def test_jobs_of_a_dead_owner_go_to_the_tail_of_their_queue(
    r: redis.Redis, config: Config
) -> None:
    raws = in_flight(r, config, DEAD, [1], [2], [3])
    died_running(r, DEAD, *raws)
    Client(config, hooks=Hooks()).push({"args": ["new"], "class": "Work"})

    assert janitor(r, config).sweep() == 3

    assert r.exists(f"roadie:inflight:{DEAD}") == 0
    taken = [loads(r.rpop("queue:default")) for _ in range(4)]
    # The recovered jobs run first, in their original order, then the newcomer.
    assert [p["args"] for p in taken] == [[1], [2], [3], ["new"]]
    for payload, raw in zip(taken[:3], raws, strict=True):
        assert payload["roadie_crashes"] == 1
        assert {k: v for k, v in payload.items() if k != "roadie_crashes"} == loads(raw)
    assert "roadie_crashes" not in taken[3]
    assert r.smembers("roadie:inflight-owners") == set()
    assert r.exists(f"roadie:died:{DEAD}") == 0  # done with: deleted


def test_only_the_jobs_running_when_the_owner_died_count_a_crash(
    r: redis.Redis, config: Config
) -> None:
    # Fetched in one batch; the second was running when the process died.
    first, running, third = in_flight(r, config, DEAD, [1], [2], [3])
    died_running(r, DEAD, running)

    assert janitor(r, config).sweep() == 3

    back = {loads(raw)["args"][0]: raw for raw in r.lrange("queue:default", 0, -1)}
    # The others go back byte for byte: no mark, as if never fetched.
    assert back[1] == first and back[3] == third
    assert loads(back[2])["roadie_crashes"] == 1


def test_without_a_death_record_the_last_heartbeats_work_hash_decides(
    r: redis.Redis, config: Config
) -> None:
    # The pulse died with its process (power loss, kill of the whole group): the
    # work hash of the last beat says what was running.
    first, running = in_flight(r, config, DEAD, [1], [2])
    state = State(DEAD)
    state.start_work("tid-1", "default", running)
    r.hset(f"{DEAD}:work", mapping=state.work)

    assert janitor(r, config).sweep() == 2

    back = {loads(raw)["args"][0]: raw for raw in r.lrange("queue:default", 0, -1)}
    assert back[1] == first
    assert loads(back[2])["roadie_crashes"] == 1


def test_with_neither_record_nor_work_hash_no_job_counts_a_crash(
    r: redis.Redis, config: Config
) -> None:
    raws = in_flight(r, config, DEAD, [1], [2])

    assert janitor(r, config).sweep() == 2

    assert sorted(r.lrange("queue:default", 0, -1)) == sorted(raws)


def test_a_death_record_that_is_not_json_is_ignored(r: redis.Redis, config: Config) -> None:
    raws = in_flight(r, config, DEAD, [1])
    r.set(f"roadie:died:{DEAD}", b"{not json")

    assert janitor(r, config).sweep() == 1

    assert r.lrange("queue:default", 0, -1) == raws


def test_crash_count_grows_with_each_recovery(r: redis.Redis, config: Config) -> None:
    config = config.replace(max_crashes=5)
    died_running(r, DEAD, *in_flight(r, config, DEAD, [1]))
    janitor(r, config).sweep()
    r.sadd("roadie:inflight-owners", "crashed:9:999999999999")
    [again] = Fetcher(r, config, Keys(), "crashed:9:999999999999").fetch(1)
    died_running(r, "crashed:9:999999999999", again.raw)

    assert janitor(r, config).sweep() == 1

    assert loads(r.rpop("queue:default"))["roadie_crashes"] == 2


def test_a_live_owner_is_left_alone(r: redis.Redis, config: Config) -> None:
    raws = in_flight(r, config, LIVE, [1])
    r.set(f"roadie:alive:{LIVE}", b"1", px=15_000)

    assert janitor(r, config).sweep() == 0

    assert r.lrange(f"roadie:inflight:{LIVE}", 0, -1) == raws
    assert r.exists("queue:default") == 0
    assert r.smembers("roadie:inflight-owners") == {LIVE.encode()}


def test_the_janitor_never_recovers_its_own_process(r: redis.Redis, config: Config) -> None:
    raws = in_flight(r, config, ME, [1])  # no liveness key yet (first beat pending)

    assert janitor(r, config).sweep() == 0

    assert r.lrange(f"roadie:inflight:{ME}", 0, -1) == raws


def test_a_job_at_max_crashes_is_buried_with_a_clear_error(
    r: redis.Redis, config: Config
) -> None:
    config = config.replace(max_crashes=3)
    client = Client(config, hooks=Hooks())
    client.push({"args": ["poison"], "class": "Work", "roadie_crashes": 2})
    client.push({"args": ["fine"], "class": "Work", "roadie_crashes": 1})
    r.sadd("roadie:inflight-owners", DEAD)
    poison, _fine = Fetcher(r, config, Keys(), DEAD).fetch(2)
    died_running(r, DEAD, poison.raw, reason="it was stopped for using too much memory")
    t0 = time.time()

    assert janitor(r, config).sweep() == 2

    [(raw, score)] = r.zrange("dead", 0, -1, withscores=True)
    dead = loads(raw)
    assert dead["args"] == ["poison"]
    assert dead["error_class"] == "roadie.errors.JobCrashedProcess"
    assert "3 times in a row that its process died" in dead["error_message"]
    assert "The last time, it was stopped for using too much memory." in dead["error_message"]
    assert dead["retry_count"] == 0 and isinstance(dead["failed_at"], float)
    assert "roadie_crashes" not in dead
    assert t0 <= score <= time.time()
    [requeued] = r.lrange("queue:default", 0, -1)
    # Not running when its process died: back unchanged, its count neither up nor reset.
    assert loads(requeued)["args"] == ["fine"] and loads(requeued)["roadie_crashes"] == 1
    assert r.smembers("roadie:inflight-owners") == set()


def test_malformed_in_flight_entry_goes_to_dead_with_its_reason(
    r: redis.Redis, config: Config
) -> None:
    r.lpush(f"roadie:inflight:{DEAD}", b"garbage{")
    r.sadd("roadie:inflight-owners", DEAD)

    assert janitor(r, config).sweep() == 1

    [entry] = [loads(m) for m in r.zrange("dead", 0, -1)]
    assert malformed_original(entry) == b"garbage{"
    assert entry["error_class"] == "roadie.errors.MalformedPayload"
    assert entry["error_message"].startswith("queue entry is not valid JSON")
    assert r.exists(f"roadie:inflight:{DEAD}", "roadie:inflight-owners") == 0


def test_jobs_return_to_their_own_queues(r: redis.Redis, config: Config) -> None:
    config = config.replace(queues=(("a", 0), ("b", 0)))
    client = Client(config, hooks=Hooks())
    client.push({"args": [1], "class": "Work", "queue": "a"})
    client.push({"args": [2], "class": "Work", "queue": "b"})
    r.sadd("roadie:inflight-owners", DEAD)
    Fetcher(r, config, Keys(), DEAD).fetch(2)

    janitor(r, config).sweep()

    assert loads(r.rpop("queue:a"))["args"] == [1]
    assert loads(r.rpop("queue:b"))["args"] == [2]


def test_more_than_one_chunk_is_recovered(r: redis.Redis, config: Config) -> None:
    n = CHUNK + 50
    inflight = f"roadie:inflight:{DEAD}"
    r.lpush(inflight, *[orjson.dumps({"class": "W", "args": [i], "queue": "q"})
                        for i in range(n)])
    r.sadd("roadie:inflight-owners", DEAD)

    assert janitor(r, config).sweep() == n

    assert r.llen("queue:q") == n
    # Oldest in flight (at the tail) runs first, across chunks too.
    order = [loads(raw)["args"][0] for raw in reversed(r.lrange("queue:q", 0, -1))]
    assert order == list(range(n))
    assert r.exists(inflight, "roadie:inflight-owners") == 0


def test_another_janitor_holding_the_lock_is_respected(r: redis.Redis, config: Config) -> None:
    raws = in_flight(r, config, DEAD, [1])
    r.set(f"roadie:lock:recover:{DEAD}", b"other-janitor", ex=60)

    assert janitor(r, config).sweep() == 0

    assert r.lrange(f"roadie:inflight:{DEAD}", 0, -1) == raws
    assert r.get(f"roadie:lock:recover:{DEAD}") == b"other-janitor"


def test_empty_dead_owner_is_forgotten_and_lock_released(
    r: redis.Redis, config: Config
) -> None:
    r.sadd("roadie:inflight-owners", DEAD)

    assert janitor(r, config).sweep() == 0

    assert r.smembers("roadie:inflight-owners") == set()
    assert r.exists(f"roadie:lock:recover:{DEAD}") == 0


def test_namespaced_janitor(r: redis.Redis, config: Config) -> None:
    config = config.replace(namespace="ns")
    r.lpush(f"ns:roadie:inflight:{DEAD}", orjson.dumps({"class": "W", "args": [], "queue": "q"}))
    r.sadd("ns:roadie:inflight-owners", DEAD)
    r.lpush(f"roadie:inflight:{DEAD}", b"not-in-our-namespace")
    r.sadd("roadie:inflight-owners", DEAD)

    assert janitor(r, config).sweep() == 1

    assert r.llen("ns:queue:q") == 1
    assert r.lrange(f"roadie:inflight:{DEAD}", 0, -1) == [b"not-in-our-namespace"]


def test_own_orphan_is_pushed_back_only_when_seen_at_two_sweeps(
    r: redis.Redis, config: Config
) -> None:
    """A job in our own in-flight list that no processor holds (a lost reply)."""
    held: set[bytes] = set()
    j = Janitor(r, config, Keys(), ME, Outage("redis://test"), threading.Event(),
                held=lambda: held)
    running, orphan = in_flight(r, config, ME, ["running"], ["orphan"])
    held.add(running)

    j.sweep()  # first sighting: only a suspect (a fetch may be just landing)
    assert r.lrange(f"roadie:inflight:{ME}", 0, -1) == [orphan, running]
    assert r.llen("queue:default") == 0

    j.sweep()  # second sighting: pushed back to the front of its queue
    assert r.lrange(f"roadie:inflight:{ME}", 0, -1) == [running]
    assert r.lrange("queue:default", 0, -1) == [orphan]


def test_a_job_picked_up_between_sweeps_is_not_pushed_back(
    r: redis.Redis, config: Config
) -> None:
    held: set[bytes] = set()
    j = Janitor(r, config, Keys(), ME, Outage("redis://test"), threading.Event(),
                held=lambda: held)
    [raw] = in_flight(r, config, ME, ["landing"])

    j.sweep()
    held.add(raw)  # its processor took it: not an orphan after all
    j.sweep()

    assert r.lrange(f"roadie:inflight:{ME}", 0, -1) == [raw]
    assert r.llen("queue:default") == 0


def test_no_recovery_right_after_an_outage(r: redis.Redis, config: Config) -> None:
    """After Redis comes back, live processes need time to beat again."""
    outage = Outage("redis://test")
    outage.failed(ConnectionError("gone"), "test")
    outage.ok()
    j = Janitor(r, config, Keys(), ME, outage, threading.Event())
    in_flight(r, config, DEAD, [1])

    assert j.sweep() == 0
    assert r.llen(f"roadie:inflight:{DEAD}") == 1

    assert outage.recovered_at is not None
    outage.recovered_at -= config.process_ttl_s + config.heartbeat_interval_s
    assert j.sweep() == 1


def test_death_handlers_hear_of_a_buried_crash_looper(r: redis.Redis, config: Config) -> None:
    hooks = Hooks()
    deaths: list[tuple[str, str]] = []
    hooks.death_handlers.append(lambda p, e: deaths.append((p["jid"], type(e).__name__)))
    j = Janitor(r, config.replace(max_crashes=1), Keys(), ME, Outage("redis://test"),
                threading.Event(), hooks=hooks)
    [raw] = in_flight(r, config, DEAD, ["poison"])
    died_running(r, DEAD, raw)

    assert j.sweep() == 1

    assert deaths == [(loads(raw)["jid"], "JobCrashedProcess")]
    assert r.zcard("dead") == 1
