"""roadie/__init__.py: the public surface."""

from __future__ import annotations

import roadie
from roadie import client, config, errors, middleware, registry
from roadie.job import Job, job


def test_all_is_sorted() -> None:
    assert roadie.__all__ == sorted(roadie.__all__)
    assert len(set(roadie.__all__)) == len(roadie.__all__)


def test_every_name_in_all_exists() -> None:
    missing = [name for name in roadie.__all__ if not hasattr(roadie, name)]
    assert missing == []


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from roadie import *", namespace)
    assert sorted(n for n in namespace if n != "__builtins__") == sorted(roadie.__all__)


def test_public_names_are_the_real_objects() -> None:
    assert roadie.Job is Job
    assert roadie.job is job
    assert roadie.Config is config.Config
    assert roadie.Registry is registry.Registry
    assert roadie.default_registry is registry.default_registry
    assert roadie.hooks is middleware.hooks
    assert roadie.push is client.push
    assert roadie.ArgumentTypeError is errors.ArgumentTypeError


def test_error_tree() -> None:
    for name in ("ConfigError", "RedisUnavailable", "JobDefinitionError", "UnknownJobError",
                 "MalformedPayload", "JobCrashedProcess"):
        assert issubclass(getattr(roadie, name), roadie.RoadieError)
    assert issubclass(roadie.ArgumentTypeError, TypeError)
    assert not issubclass(roadie.ArgumentTypeError, roadie.RoadieError)
