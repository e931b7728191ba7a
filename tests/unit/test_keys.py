"""keys.py: Sidekiq's key names exactly, roadie's own keys, the namespace prefix."""

from __future__ import annotations

import pytest

from roadie.keys import Keys

IDENTITY = "vm:9613:72478f4d7a49"


def all_keys(k: Keys) -> list[str]:
    return [
        k.queue("default"), k.queues, k.queue_prefix, k.schedule, k.retry, k.dead, k.processes,
        k.process(IDENTITY), k.work(IDENTITY), k.workers(IDENTITY), k.signals(IDENTITY),
        k.stat("processed"), k.stat_daily("processed", "2026-11-28"), k.process_cleanup,
        k.inflight(IDENTITY), k.inflight_owners, k.alive(IDENTITY), k.recover_lock(IDENTITY),
    ]


def test_sidekiq_keys_exactly() -> None:
    k = Keys()
    assert k.queue("default") == "queue:default"
    assert k.queue("mail") == "queue:mail"
    assert k.queue_prefix == "queue:"
    assert k.queues == "queues"
    assert k.schedule == "schedule"
    assert k.retry == "retry"
    assert k.dead == "dead"
    assert k.processes == "processes"
    assert k.process(IDENTITY) == IDENTITY
    assert k.work(IDENTITY) == f"{IDENTITY}:work"
    assert k.workers(IDENTITY) == f"{IDENTITY}:workers"
    assert k.signals(IDENTITY) == f"{IDENTITY}-signals"
    assert k.stat("processed") == "stat:processed"
    assert k.stat("failed") == "stat:failed"
    assert k.stat_daily("processed", "2026-11-28") == "stat:processed:2026-11-28"
    assert k.stat_daily("failed", "2026-11-28") == "stat:failed:2026-11-28"
    assert k.process_cleanup == "process_cleanup"


def test_roadie_keys_live_under_roadie() -> None:
    k = Keys()
    assert k.inflight(IDENTITY) == f"roadie:inflight:{IDENTITY}"
    assert k.inflight_owners == "roadie:inflight-owners"
    assert k.alive(IDENTITY) == f"roadie:alive:{IDENTITY}"
    assert k.recover_lock(IDENTITY) == f"roadie:lock:recover:{IDENTITY}"


def test_default_namespace_is_empty() -> None:
    assert Keys().namespace == ""
    assert Keys("") == Keys()


@pytest.mark.parametrize("ns", ["myapp", "a:b"])
def test_namespace_prefixes_every_key(ns: str) -> None:
    plain = all_keys(Keys())
    prefixed = all_keys(Keys(ns))
    assert prefixed == [f"{ns}:{key}" for key in plain]


def test_queue_prefix_matches_queue_keys() -> None:
    for k in (Keys(), Keys("ns")):
        assert k.queue("x") == k.queue_prefix + "x"


def test_keys_are_frozen_and_hashable() -> None:
    k = Keys("ns")
    with pytest.raises(AttributeError):
        k.namespace = "other"  # type: ignore[misc]
    assert {Keys("ns"), Keys("ns")} == {k}

