"""Parsing and redacting Sentinel, TLS and ACL URLs (no server needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from roadie.config import Config
from roadie.errors import ConfigError
from roadie.redis.connection import (
    FailoverError,
    connect,
    is_sentinel_url,
    parse_sentinel_url,
    redact,
)
from roadie.server.outage import TRANSIENT


def test_sentinel_url_parts() -> None:
    url = ("redis+sentinel://app:p%40ss@10.0.0.1:26379,10.0.0.2:26380,[::1]:26381,sentinel4"
           "/mymaster/3?sentinel_password=sp&sentinel_username=su&socket_timeout=2.5")
    parsed = parse_sentinel_url(url)
    assert parsed.sentinels == (("10.0.0.1", 26379), ("10.0.0.2", 26380), ("::1", 26381),
                                ("sentinel4", 26379))
    assert parsed.service == "mymaster"
    assert not parsed.tls
    assert parsed.options == {"username": "app", "password": "p@ss", "db": 3,
                              "socket_timeout": 2.5}
    assert parsed.sentinel_options == {"username": "su", "password": "sp"}
    assert is_sentinel_url(url) and not is_sentinel_url("redis://h:1/0")


def test_sentinel_url_defaults_and_password_only() -> None:
    parsed = parse_sentinel_url("redis+sentinel://:pw@s1/svc")
    assert parsed.sentinels == (("s1", 26379),)
    assert parsed.options == {"password": "pw"}
    assert parsed.sentinel_options == {}


def test_tls_sentinel_url_uses_tls_for_sentinels_too(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not read here")
    parsed = parse_sentinel_url(f"rediss+sentinel://s1:1,s2:2/svc?ssl_ca_certs={ca}")
    assert parsed.tls
    assert parsed.options["ssl_ca_certs"] == str(ca)
    assert parsed.sentinel_options == {"ssl": True, "ssl_ca_certs": str(ca)}
    plain = parse_sentinel_url(f"rediss+sentinel://s1/svc?ssl_ca_certs={ca}&sentinel_ssl=no")
    assert "ssl" not in plain.sentinel_options


@pytest.mark.parametrize(("url", "message"), [
    ("redis+sentinel:///svc", "no sentinel addresses"),
    ("redis+sentinel://s1:26379", "no service name"),
    ("redis+sentinel://s1:26379/", "no service name"),
    ("redis+sentinel://s1:port/svc", "invalid port"),
    ("redis+sentinel://s1/svc/notadb", "/<service_name>[/db]"),
    ("redis+sentinel://s1/svc/0/extra", "/<service_name>[/db]"),
    ("redis+sentinel://s1/svc?bogus=1", "unknown option(s) bogus"),
    ("redis+sentinel://s1/svc?socket_timeout=abc", "invalid value 'abc' for socket_timeout"),
    ("redis+sentinel://s1/svc?ssl_ca_certs=/x", "use rediss://"),
    ("redis+sentinel://s1/svc?sentinel_ssl=yes", "sentinel_ssl needs rediss+sentinel://"),
])
def test_bad_sentinel_urls_say_what_is_wrong(url: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        connect(Config(redis_url=url))
    assert message in str(info.value)


def test_tls_options_are_checked_before_connecting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not use TLS; use rediss://"):
        connect(Config(redis_url="redis://127.0.0.1:1/0?ssl_ca_certs=/etc/hosts"))
    missing = tmp_path / "nope.pem"
    with pytest.raises(ConfigError, match=r"nope\.pem'?, which does not exist"):
        connect(Config(redis_url=f"rediss://127.0.0.1:1/0?ssl_ca_certs={missing}"))
    with pytest.raises(ConfigError, match=r"ssl_cert_reqs .* must be one of required"):
        connect(Config(redis_url="rediss://127.0.0.1:1/0?ssl_cert_reqs=maybe"))
    with pytest.raises(ConfigError, match="unknown TLS option 'ssl_bogus'"):
        connect(Config(redis_url="rediss://127.0.0.1:1/0?ssl_bogus=1"))
    # Accepted as given (no connection is made until a command runs).
    client = connect(Config(redis_url="rediss://127.0.0.1:1/0?ssl_cert_reqs=none"))
    assert client.connection_pool.connection_kwargs["ssl_cert_reqs"] == "none"


@pytest.mark.parametrize(("url", "shown"), [
    ("redis://user:pw@h:1/0", "redis://user:***@h:1/0"),
    ("redis://:pw@h:1/0", "redis://:***@h:1/0"),
    ("redis://h:1/0", "redis://h:1/0"),
    ("redis+sentinel://u:pw@a:1,b:2/svc/0?sentinel_password=spw&socket_timeout=1",
     "redis+sentinel://u:***@a:1,b:2/svc/0?sentinel_password=***&socket_timeout=1"),
    ("rediss://h/0?password=pw&ssl_password=kp&ssl_ca_certs=/ca.pem",
     "rediss://h/0?password=***&ssl_password=***&ssl_ca_certs=/ca.pem"),
    ("embedded://.roadie/redis", "embedded://.roadie/redis"),
])
def test_redact_hides_every_password(url: str, shown: str) -> None:
    assert redact(url) == shown


def test_failover_replies_are_transient() -> None:
    # The reply parser maps them (see the sentinel test for real ones).
    assert issubclass(FailoverError, redis.ResponseError)
    for error in (FailoverError, redis.ReadOnlyError, redis.sentinel.MasterNotFoundError):
        assert issubclass(error, TRANSIENT)
    parser = connect(Config(redis_url="redis://127.0.0.1:1/0")).connection_pool.connection_kwargs[
        "parser_class"]
    for reply in ("NOREPLICAS Not enough good replicas to write.",
                  "UNBLOCKED force unblock from blocking operation, instance state changed",
                  "MASTERDOWN Link with MASTER is down"):
        assert isinstance(parser.parse_error(reply), FailoverError)
    assert type(parser.parse_error("READONLY You can't write")) is redis.ReadOnlyError
    assert type(parser.parse_error("ERR other")) is redis.ResponseError


def test_sentinel_pools_block_like_plain_ones() -> None:
    """Processes ask for a blocking pool (threads wait for a connection); with a
    sentinel URL they get one that is also sentinel-managed, with roadie's options."""
    config = Config(redis_url="redis+sentinel://127.0.0.1:1/svc/2", socket_timeout_s=4.0)
    pool = connect(config, max_connections=13, blocking=True).connection_pool
    assert isinstance(pool, redis.sentinel.SentinelConnectionPool)
    assert isinstance(pool, redis.BlockingConnectionPool)
    assert pool.max_connections == 13 and pool.timeout == 30
    kwargs = pool.connection_kwargs
    assert kwargs["db"] == 2 and kwargs["socket_timeout"] == 4.0
    assert kwargs["decode_responses"] is False
    plain = connect(config).connection_pool
    assert isinstance(plain, redis.sentinel.SentinelConnectionPool)
    assert not isinstance(plain, redis.BlockingConnectionPool)
    tls = connect(Config(redis_url="rediss+sentinel://127.0.0.1:1/svc")).connection_pool
    assert issubclass(tls.connection_class, redis.SSLConnection)
    assert not issubclass(plain.connection_class, redis.SSLConnection)
