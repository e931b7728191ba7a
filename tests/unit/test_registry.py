"""registry.py: job names to classes, one class per name (a module run again replaces
its classes), lookups and unregistering (no Redis)."""

from __future__ import annotations

import pytest

from roadie.errors import JobDefinitionError, UnknownJobError
from roadie.job import Job
from roadie.registry import Registry


def test_two_classes_with_one_name_raise(reg: Registry) -> None:
    class First(Job, registry=reg, name="Shared"):
        def perform(self) -> None: ...

    with pytest.raises(JobDefinitionError) as info:

        class Second(Job, registry=reg, name="Shared"):
            def perform(self) -> None: ...

    msg = str(info.value)
    assert "two job classes claim the name 'Shared'" in msg
    assert "First" in msg and "Second" in msg
    assert "name='...'" in msg
    assert reg.get("Shared") is First


def test_redefining_the_same_class_replaces_it_silently(reg: Registry) -> None:
    defined = []
    for _ in range(2):

        class Again(Job, registry=reg):
            def perform(self) -> None: ...

        defined.append(Again)
    assert defined[0] is not defined[1]
    assert reg.get(defined[1].name) is defined[1]
    assert len(reg.names()) == 1


def test_registering_the_same_class_twice_is_fine(reg: Registry) -> None:
    class Twice(Job, registry=reg, name="Twice"):
        def perform(self) -> None: ...

    reg.register("Twice", Twice)
    assert reg.get("Twice") is Twice


def test_unknown_job(reg: Registry) -> None:
    message = r"^unknown job class HardJob; is its module loaded with -r\?$"
    with pytest.raises(UnknownJobError, match=message):
        reg.get("HardJob")
    assert reg.find("HardJob") is None
    assert "HardJob" not in reg


def test_unregister(reg: Registry) -> None:
    class Gone(Job, registry=reg, name="Gone"):
        def perform(self) -> None: ...

    reg.unregister("Gone")
    reg.unregister("Gone")  # twice is fine
    assert "Gone" not in reg


def test_has_async_follows_the_registered_classes(reg: Registry) -> None:
    class Sync(Job, registry=reg, name="Sync"):
        def perform(self) -> None: ...

    assert reg.has_async is False

    class Async(Job, registry=reg, name="Async"):
        async def perform(self) -> None: ...

    class AlsoAsync(Job, registry=reg, name="AlsoAsync"):
        async def perform(self) -> None: ...

    assert reg.has_async is True
    reg.unregister("Async")
    assert reg.has_async is True  # AlsoAsync is still there
    reg.unregister("AlsoAsync")
    assert reg.has_async is False and reg.names() == ["Sync"]
