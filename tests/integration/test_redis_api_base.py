"""roadie/api/base.py against a real Redis: an API object built from a ``Config`` or
from ``redis=`` plus ``keys=`` uses the namespace for every key."""

from __future__ import annotations

import redis

from roadie.api import Queue, Stats
from roadie.client import Client
from roadie.config import Config
from roadie.keys import Keys
from roadie.middleware import Hooks


def test_a_namespace_prefixes_every_key(r: redis.Redis, config: Config) -> None:
    ns = config.replace(namespace="app")
    Client(ns, hooks=Hooks()).push({"class": "A", "args": []})
    assert Queue("default", ns).size() == 1
    assert Queue("default", config).size() == 0
    assert Stats(redis=r, keys=Keys("app")).summary().enqueued == 1
