"""Scenario 6: pushing while Redis is away.

``perform_async`` and ``perform_bulk`` raise ``roadie.PushError`` (a
``RedisUnavailable``) that says what was written. One batch (one MULTI) is all or
nothing; a bulk push of several batches cut in the middle keeps the batches that
Redis confirmed: the error lists their jids, and those run, exactly once each.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import faultjobs
import pytest
import redis
from fault_support import FAULT_ENV, account, jobs_left, scale, soak, wait_drained
from support.procs import Harness
from tcpproxy import TcpProxy

import roadie
from roadie.aio import AsyncClient
from roadie.embedded import RedisServer, free_port

pytestmark = pytest.mark.system

BATCH = 1000
T = TypeVar("T")


def test_push_while_redis_is_down_raises_a_clear_error(
    redis_server: RedisServer, proxy_factory: Callable[[int], TcpProxy],
    use_client: Callable[[str], roadie.Client],
) -> None:
    proxy = proxy_factory(redis_server.port)
    client = use_client(proxy.url)
    client.config = client.config.replace(connect_timeout_s=1.0, socket_timeout_s=1.0)
    proxy.cut()
    # The port is closed: the connection is refused, so nothing was sent.
    with pytest.raises(roadie.PushError, match=r"could not push faults\.Count .*could not "
                       r"connect .*Nothing was written") as info:
        faultjobs.Count.perform_async(1)
    assert isinstance(info.value, roadie.RedisUnavailable)
    assert len(info.value.not_written) == 1 and not info.value.written + info.value.unconfirmed
    with pytest.raises(roadie.PushError, match=r"bulk push interrupted at batch 1 of 1: .* "
                       "0 of 3 jobs were written") as bulk:
        faultjobs.Count.perform_bulk([[1], [2], [3]])
    assert bulk.value.written == bulk.value.unconfirmed == []
    assert len(bulk.value.not_written) == 3
    proxy.restore()
    assert faultjobs.Count.perform_async(1)
    r = redis_server.client()
    # Nothing of the failed pushes was written: Redis never heard of them.
    assert r.llen("queue:default") == 1
    r.close()


def test_bulk_push_cut_in_the_middle_keeps_whole_batches(
    redis_server: RedisServer, proxy_factory: Callable[[int], TcpProxy],
    make_harness: Callable[..., Harness], use_client: Callable[[str], roadie.Client],
) -> None:
    url = redis_server.url
    r = redis.Redis.from_url(url)
    proxy = proxy_factory(redis_server.port)
    use_client(proxy.url)
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
    procs = make_harness(url, FAULT_ENV)
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
    use_client: Callable[[str], roadie.Client],
) -> None:
    r = redis.Redis.from_url(redis_server.url)
    proxy = proxy_factory(redis_server.port)
    use_client(proxy.url)
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


# --- every push failure says what was written, and why -------------------------------
# Each test runs the blocking client and roadie.aio's, on private redis-servers.

TEXT = "x" * 400  # one job takes about 0.5 KB of Redis memory


class Filler(roadie.Job, name="faults.Filler"):
    def perform(self, text: str) -> None: ...


class Pusher:
    """Pushes with the blocking ``roadie.Client`` or with ``roadie.aio.AsyncClient``."""

    def __init__(self, mode: str, client: roadie.Client) -> None:
        self.mode, self.client = mode, client

    def _run(self, call: Callable[[AsyncClient], Coroutine[Any, Any, T]]) -> T:
        async def go() -> T:
            pusher = AsyncClient(self.client)
            try:
                return await call(pusher)
            finally:
                await pusher.aclose()

        return asyncio.run(go())

    def perform_async(self, *args: Any) -> str | None:
        if self.mode == "sync":
            return Filler.perform_async(*args)
        return self._run(lambda a: a.perform_async(Filler, *args))

    def perform_in(self, seconds: float, *args: Any) -> str | None:
        if self.mode == "sync":
            return Filler.perform_in(seconds, *args)
        return self._run(lambda a: a.perform_in(Filler, seconds, *args))

    def perform_bulk(self, args_list: list[list[Any]]) -> list[str | None]:
        if self.mode == "sync":
            return Filler.perform_bulk(args_list, batch_size=BATCH)
        return self._run(lambda a: a.perform_bulk(Filler, args_list, batch_size=BATCH))


@pytest.fixture(params=["sync", "aio"])
def pusher_to(request: pytest.FixtureRequest, use_client: Callable[[str], roadie.Client]
              ) -> Callable[[str], Pusher]:
    """``pusher_to(url)``: a Pusher on ``url`` (also the default client)."""
    return lambda url: Pusher(str(request.param), use_client(url))


@pytest.fixture
def private_server(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    """``private_server(*args)``: a started redis-server (no AOF) with those options."""
    made: list[RedisServer] = []

    def start(*extra_args: str) -> RedisServer:
        server = RedisServer(directory=tmp_path / f"redis{len(made)}", appendonly=False,
                             extra_args=list(extra_args))
        made.append(server)
        server.start()
        return server

    try:
        yield start
    finally:
        for server in made:
            server.stop()


def queued_jids(r: redis.Redis, queue: str = "queue:default") -> list[str]:
    return [faultjobs.orjson.loads(raw)["jid"] for raw in r.lrange(queue, 0, -1)]


def test_bulk_push_into_a_full_redis_says_which_batches_were_written(
    private_server: Callable[..., RedisServer], pusher_to: Callable[[str], Pusher],
) -> None:
    server = private_server("--maxmemory", "3mb", "--maxmemory-policy", "noeviction")
    pusher = pusher_to(server.url)
    jobs = 20 * BATCH
    with pytest.raises(roadie.PushError, match=r"bulk push interrupted at batch \d+ of 20: "
                       r"Redis at .* is full: .*Raise maxmemory .*let `roadie run` work the "
                       r"queues down") as info:
        pusher.perform_bulk([[TEXT] for _ in range(jobs)])
    err = info.value
    assert isinstance(err.__cause__, redis.OutOfMemoryError)
    r = server.client()
    # The first batches fit; the one Redis refused and all after it are not written.
    assert 0 < len(err.written) < jobs and len(err.written) % BATCH == 0
    assert err.unconfirmed == []
    assert len(err.written) + len(err.not_written) == jobs
    assert queued_jids(r)[::-1] == err.written
    assert f"{len(err.written)} of {jobs} jobs were written" in str(err)

    # Once the refused batch's request is freed Redis may be just under maxmemory again:
    # lower it under what the written jobs take, so that every write is refused.
    r.config_set("maxmemory", "1mb")
    with pytest.raises(roadie.PushError, match=r"is full: .*Nothing was written") as one:
        pusher.perform_async(TEXT)
    with pytest.raises(roadie.PushError, match=r"is full") as later:
        pusher.perform_in(60, TEXT)
    for refused in (one.value, later.value):
        assert len(refused.not_written) == 1 and not refused.written + refused.unconfirmed
    assert r.llen("queue:default") == len(err.written) and r.zcard("schedule") == 0
    r.close()


def test_push_to_a_port_with_nothing_listening_says_nothing_was_written(
    pusher_to: Callable[[str], Pusher],
) -> None:
    pusher = pusher_to(f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(roadie.PushError, match=r"could not push faults\.Filler .*could not "
                       r"connect to Redis at .*Nothing was written") as info:
        pusher.perform_async(TEXT)
    assert isinstance(info.value.__cause__, redis.ConnectionError)
    assert len(info.value.not_written) == 1
    assert info.value.written == info.value.unconfirmed == []
    with pytest.raises(roadie.PushError, match=r"0 of 2500 jobs were written .*2500 were "
                       r"not written") as bulk:
        pusher.perform_bulk([[TEXT]] * 2500)
    assert len(bulk.value.not_written) == 2500
    assert bulk.value.written == bulk.value.unconfirmed == []


def test_push_with_a_wrong_or_missing_password_says_nothing_was_written(
    private_server: Callable[..., RedisServer], pusher_to: Callable[[str], Pusher],
) -> None:
    server = private_server("--requirepass", "s3cret")
    # A wrong password fails the login; no password at all gets NOAUTH for every command.
    for url in (f"redis://:nope@127.0.0.1:{server.port}/0", server.url):
        pusher = pusher_to(url)
        with pytest.raises(roadie.PushError, match=r"refused the login .*check the user and "
                           r"password .*Nothing was written") as info:
            pusher.perform_async(TEXT)
        assert "nope" not in str(info.value)
        assert isinstance(info.value.__cause__, redis.AuthenticationError)
        assert len(info.value.not_written) == 1 and not info.value.unconfirmed
        with pytest.raises(roadie.PushError, match="0 of 3 jobs were written") as bulk:
            pusher.perform_bulk([[TEXT]] * 3)
        assert len(bulk.value.not_written) == 3
    r = server.client(password="s3cret")
    assert r.dbsize() == 0
    r.close()


def test_push_by_a_user_lacking_a_write_command_says_nothing_was_written(
    private_server: Callable[..., RedisServer], pusher_to: Callable[[str], Pusher],
) -> None:
    server = private_server()
    r = server.client()
    for user, denied in (("nolpush", "-lpush"), ("nozadd", "-zadd"), ("nomulti", "-multi")):
        r.acl_setuser(user, enabled=True, passwords=["+pw"], keys=["*"],
                      commands=["+@all", denied])
    no_lpush = pusher_to(f"redis://nolpush:pw@127.0.0.1:{server.port}/0")
    with pytest.raises(roadie.PushError, match=r"may not run a command a push needs "
                       r"\(.*lpush.*\).*Nothing was written") as info:
        no_lpush.perform_async(TEXT)
    assert isinstance(info.value.__cause__, redis.exceptions.NoPermissionError)
    assert len(info.value.not_written) == 1
    with pytest.raises(roadie.PushError, match="0 of 1500 jobs were written") as bulk:
        no_lpush.perform_bulk([[TEXT]] * 1500)
    assert len(bulk.value.not_written) == 1500
    assert no_lpush.perform_in(60, TEXT)  # ZADD is allowed

    no_zadd = pusher_to(f"redis://nozadd:pw@127.0.0.1:{server.port}/0")
    with pytest.raises(roadie.PushError, match=r"\(.*zadd.*\).*Nothing was written"):
        no_zadd.perform_in(60, TEXT)
    assert r.zcard("schedule") == 1 and r.llen("queue:default") == 0

    # Without MULTI, Redis runs each write on its own: the job is written, and said so.
    no_multi = pusher_to(f"redis://nomulti:pw@127.0.0.1:{server.port}/0")
    jid = no_multi.perform_async(TEXT)
    assert queued_jids(r) == [jid]
    r.close()


def test_push_whose_reply_times_out_is_unconfirmed(
    private_server: Callable[..., RedisServer], pusher_to: Callable[[str], Pusher],
) -> None:
    server = private_server()
    pusher = pusher_to(server.url)
    pusher.client.config = pusher.client.config.replace(socket_timeout_s=1.0)
    r = server.client()
    r.execute_command("CLIENT", "PAUSE", "3000", "WRITE")  # EXEC waits; the reply is late
    with pytest.raises(roadie.PushError, match=r"did not answer within 1 s "
                       r"\(socket_timeout_s\)\. The job may or may not have been "
                       r"written") as info:
        pusher.perform_async(TEXT)
    assert isinstance(info.value.__cause__, redis.TimeoutError)
    assert len(info.value.unconfirmed) == 1
    assert info.value.written == info.value.not_written == []
    r.execute_command("CLIENT", "UNPAUSE")
    r.close()
