"""``roadie.server.supply.acks.PendingAcks``: successes held for the next fetch."""

from __future__ import annotations

import threading

from support.wait import wait_until

from roadie.server.supply.acks import PendingAcks


def test_take_returns_everything_held_in_order_and_empties_it() -> None:
    acks = PendingAcks()
    for raw in (b"a", b"b", b"c"):
        acks.add(raw)

    assert acks.take() == [b"a", b"b", b"c"]
    assert acks.take() == [] and acks.raws == []


def test_take_with_older_than_waits_for_the_oldest_to_be_that_old() -> None:
    acks = PendingAcks()
    acks.add(b"a")

    assert acks.take(older_than=60.0) == []  # just added: younger than a minute
    assert acks.raws == [b"a"]  # and still held
    wait_until(lambda: acks.take(older_than=0.01) == [b"a"],
               message="an acknowledgement older than 10 ms was not taken")


def test_restore_puts_unwritten_ones_back_before_newer_ones() -> None:
    acks = PendingAcks()
    acks.add(b"a")
    taken = acks.take()
    acks.add(b"b")  # a success while the write of a failed

    acks.restore(taken)

    assert acks.take() == [b"a", b"b"]


def test_restore_into_an_empty_holder_restarts_its_age() -> None:
    acks = PendingAcks()
    acks.restore([b"a"])

    # Restored now: not yet older than a minute, so a flush leaves it to the fetch.
    assert acks.take(older_than=60.0) == []
    assert acks.take() == [b"a"]


def test_adds_from_many_threads_while_another_takes_lose_nothing() -> None:
    acks = PendingAcks()
    taken: list[bytes] = []
    done = threading.Event()

    def take_until_done() -> None:
        while not done.is_set():
            taken.extend(acks.take())

    taker = threading.Thread(target=take_until_done)
    taker.start()
    adders = [threading.Thread(target=lambda k=k: [acks.add(f"{k}-{i}".encode())
                                                   for i in range(2000)])
              for k in range(4)]
    for t in adders:
        t.start()
    for t in adders:
        t.join(10)
    done.set()
    taker.join(10)
    taken.extend(acks.take())

    assert sorted(taken) == sorted(f"{k}-{i}".encode() for k in range(4) for i in range(2000))
