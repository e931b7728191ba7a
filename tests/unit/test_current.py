"""current.py: the default client (set, lent to a block, put back even when it was
none), the pushes the current client keeps, and each thread's own connection on the
default client's Redis as a processor lends it (no Redis: nothing here connects; a
connection a thread makes itself is tested in tests/integration/test_redis_client.py)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

import roadie
import roadie.current
import roadie.testing
from roadie.errors import NotInFakeMode
from roadie.registry import Registry
from unit.unit_support import NOWHERE, Mail, Recorder


@pytest.fixture(autouse=True)
def no_leak() -> Iterator[None]:
    before = roadie.current.configured()
    yield
    assert roadie.current.configured() is before, "a default client leaked out of its test"


def in_a_new_thread(check: Callable[[], Any]) -> Any:
    """``check()``'s result, called in a thread of its own (a fresh thread-local state)."""
    out: list[Any] = []
    t = threading.Thread(target=lambda: out.append(check()))
    t.start()
    t.join(5)
    assert out, "the check raised or hung"
    return out[0]


def test_using_none_leaves_no_default_client_for_the_block() -> None:
    real = roadie.Client(NOWHERE)
    with roadie.current.using(real):
        with roadie.current.using(None) as none:
            assert none is None
            assert roadie.current.configured() is None
        assert roadie.current.configured() is real
    assert roadie.testing.using is roadie.current.using


def test_set_default_is_what_configured_returns_and_using_puts_it_back() -> None:
    first, second = roadie.Client(NOWHERE), roadie.Client(NOWHERE)
    with roadie.current.using(None):
        assert roadie.current.set_default(first) is first
        assert roadie.current.configured() is first
        with pytest.raises(RuntimeError), roadie.current.using(second):
            assert roadie.current.configured() is second
            raise RuntimeError("the block failed")
        assert roadie.current.configured() is first  # put back despite the failure
    assert roadie.current.configured() is not first


def test_kept_jobs_are_the_fake_clients_and_refused_by_a_client_that_writes() -> None:
    with roadie.current.using(Recorder()), pytest.raises(NotInFakeMode):  # type: ignore[type-var]
        roadie.current.kept_jobs("Mail")
    with roadie.testing.fake(registry=Registry(), config=NOWHERE) as fake:
        assert roadie.current.kept_jobs("Mail") == []
        Mail.perform_async(7)
        kept = roadie.current.kept_jobs("Mail")
        assert [p["args"] for p in kept] == [[7]]
        assert kept is fake.jobs("Mail")  # the live list, not a copy


def test_a_lent_connection_serves_only_while_its_default_client_is_current() -> None:
    client, other = roadie.Client(NOWHERE), roadie.Client(NOWHERE)
    lent = redis.Redis.from_url(NOWHERE.redis_url)  # never connects: no command is sent

    def check() -> tuple[Any, Any, Any]:
        before = roadie.current.thread_redis()  # a new thread has no connection yet
        roadie.current.lend_thread_client(lent, NOWHERE)
        mine = roadie.current.thread_redis()
        with roadie.current.using(other):  # a new default: the lent one was for another
            theirs = roadie.current.thread_redis()
        return before, mine, theirs

    with roadie.current.using(client):
        assert in_a_new_thread(check) == (None, lent, None)
        # Lent in that thread only.
        assert in_a_new_thread(roadie.current.thread_redis) is None


@pytest.mark.parametrize("change", [{"redis_url": "redis://127.0.0.1:2/0"},
                                    {"socket_timeout_s": 99.0},
                                    {"connect_timeout_s": 99.0}], ids=lambda c: next(iter(c)))
def test_no_connection_is_lent_for_another_redis_or_other_timeouts(change: dict[str, Any]) -> None:
    lent = redis.Redis.from_url(NOWHERE.redis_url)

    def check() -> Any:
        roadie.current.lend_thread_client(lent, NOWHERE.replace(**change))
        return roadie.current.thread_redis()

    with roadie.current.using(roadie.Client(NOWHERE)):
        assert in_a_new_thread(check) is None

    def lend_with_no_default() -> Any:
        roadie.current.lend_thread_client(lent, NOWHERE)
        return roadie.current.thread_redis()

    with roadie.current.using(None):  # no default client: nothing to lend for
        assert in_a_new_thread(lend_with_no_default) is None
