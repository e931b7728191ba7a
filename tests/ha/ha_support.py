"""Real redis-server / redis-sentinel processes for the HA tests, and a small
``roadie run`` spawner.

Everything listens on 127.0.0.1 on free ports, lives in the test's tmp dir, and is
killed when the test ends (``Servers.close``). Waits poll a condition with a deadline.
"""

from __future__ import annotations

import contextlib
import datetime
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import redis
from support.procs import FAST_ENV, base_env
from support.wait import wait_until

from roadie.acl import acl_rule
from roadie.embedded import free_port

HERE = Path(__file__).resolve().parent
HA_JOBS = HERE / "ha_jobs.py"
REDIS_SERVER = shutil.which("redis-server")
REDIS_SENTINEL = shutil.which("redis-sentinel")

#: The system tests' short intervals, so that recovery takes seconds, and short socket
#: timeouts, so that a dead primary is noticed in seconds.
HA_ENV = {**FAST_ENV, "ROADIE_SOCKET_TIMEOUT_S": "3", "ROADIE_CONNECT_TIMEOUT_S": "1"}


def has_tls(binary: str) -> bool:
    """Whether this redis-server was built with TLS (it then knows ``--tls-port``)."""
    out = subprocess.run(
        [binary, "--port", "0", "--tls-port", "0"], capture_output=True, text=True, timeout=10,
    )
    text = out.stdout + out.stderr
    return "Bad directive" not in text and "wrong number" not in text.lower()


class Server:
    """One redis-server or redis-sentinel process, with its own log file."""

    def __init__(self, name: str, argv: list[str], port: int, workdir: Path,
                 client_kwargs: Mapping[str, Any] | None = None) -> None:
        self.name = name
        self.argv = argv
        self.port = port
        self.workdir = workdir
        self.log_path = workdir / f"{name}.log"
        self.client_kwargs = dict(client_kwargs or {})
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Server:
        self.popen = subprocess.Popen(
            [*self.argv, "--logfile", str(self.log_path)], cwd=self.workdir,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        return self

    def client(self, **kwargs: Any) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=3,
                           socket_connect_timeout=1, **{**self.client_kwargs, **kwargs})

    def wait_ready(self, timeout: float = 10.0) -> Server:
        client = self.client()

        def ping() -> bool:
            if self.popen is not None and self.popen.poll() is not None:
                raise AssertionError(f"{self.name} exited ({self.popen.returncode}):\n"
                                     f"{self.tail()}")
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        try:
            wait_until(ping, timeout, 0.02, f"{self.name} did not answer PING")
        finally:
            client.close()
        return self

    def kill(self) -> float:
        """SIGKILL and reap; returns when (monotonic)."""
        at = time.monotonic()
        if self.popen is not None and self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(10)
        return at

    def tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


class Servers:
    """The servers a test started; all killed by ``close``."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.all: list[Server] = []

    def redis(self, name: str, *args: str, port: int | None = None, tls: bool = False,
              client_kwargs: Mapping[str, Any] | None = None) -> Server:
        assert REDIS_SERVER is not None
        port = port or free_port()
        listen = (["--port", "0", "--tls-port", str(port)] if tls else ["--port", str(port)])
        argv = [REDIS_SERVER, *listen, "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(self.workdir),
                "--dbfilename", f"{name}.rdb", *args]
        server = Server(name, argv, port, self.workdir, client_kwargs)
        self.all.append(server)
        return server.start()

    def sentinel(self, name: str, primary_port: int, service: str, quorum: int = 2,
                 tls: Mapping[str, Path] | None = None) -> Server:
        """A sentinel monitoring 127.0.0.1:``primary_port``; with ``tls`` (``make_tls``'s
        paths) it listens and talks to the servers over TLS only."""
        assert REDIS_SENTINEL is not None
        port = free_port()
        conf = self.workdir / f"{name}.conf"
        listen = [f"port {port}"] if tls is None else [
            "port 0", f"tls-port {port}", f"tls-cert-file {tls['server_cert']}",
            f"tls-key-file {tls['server_key']}", f"tls-ca-cert-file {tls['ca']}",
            "tls-auth-clients no", "tls-replication yes",
        ]
        conf.write_text("\n".join([
            *listen,
            "bind 127.0.0.1",
            f"dir {self.workdir}",
            f"sentinel monitor {service} 127.0.0.1 {primary_port} {quorum}",
            f"sentinel down-after-milliseconds {service} 1000",
            f"sentinel failover-timeout {service} 4000",
            f"sentinel parallel-syncs {service} 1",
            "",
        ]))
        server = Server(name, [REDIS_SENTINEL, str(conf)], port, self.workdir,
                        None if tls is None else tls_client_kwargs(tls))
        self.all.append(server)
        return server.start()

    def close(self) -> None:
        for server in self.all:
            server.kill()

    def report(self) -> str:
        return "\n".join(f"--- {s.name} (port {s.port})\n{s.tail()}" for s in self.all)


def spawn_roadie(url: str, workdir: Path, *args: str, env: Mapping[str, str] | None = None,
                 name: str = "roadie") -> tuple[subprocess.Popen[bytes], Path]:
    """``python -m roadie run -r ha_jobs.py *args`` with ``url``; its output goes to a log."""
    full_env = {**base_env(url), **HA_ENV, **(env or {})}
    log_path = workdir / f"{name}.log"
    with log_path.open("wb") as log:
        popen = subprocess.Popen(
            [sys.executable, "-m", "roadie", "run", "-r", str(HA_JOBS), *args],
            env=full_env, cwd=workdir, stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
    return popen, log_path


def stop_roadie(popen: subprocess.Popen[bytes]) -> None:
    if popen.poll() is None:
        popen.kill()
        popen.wait(10)


# --- TLS material ----------------------------------------------------------------
def tls_server_args(tls: Mapping[str, Path]) -> tuple[str, ...]:
    """redis-server options for TLS with ``make_tls``'s files (no client certificates
    asked; replication over TLS too)."""
    return ("--tls-cert-file", str(tls["server_cert"]), "--tls-key-file",
            str(tls["server_key"]), "--tls-ca-cert-file", str(tls["ca"]),
            "--tls-auth-clients", "no", "--tls-replication", "yes")


def tls_client_kwargs(tls: Mapping[str, Path]) -> dict[str, Any]:
    return {"ssl": True, "ssl_ca_certs": str(tls["ca"])}


def make_tls(directory: Path, name: str = "ca") -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by
    that CA, as PEM files in ``directory``: {"ca", "server_cert", "server_key",
    "client_cert", "client_key"}."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    start, end = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=1)

    def key() -> ec.EllipticCurvePrivateKey:
        return ec.generate_private_key(ec.SECP256R1())

    def subject(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    ca_key = key()
    ca = (x509.CertificateBuilder().subject_name(subject(f"roadie test {name}"))
          .issuer_name(subject(f"roadie test {name}")).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(start)
          .not_valid_after(end)
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))

    def leaf(cn: str, usage: x509.ObjectIdentifier) -> tuple[x509.Certificate,
                                                             ec.EllipticCurvePrivateKey]:
        k = key()
        builder = (x509.CertificateBuilder().subject_name(subject(cn)).issuer_name(ca.subject)
                   .public_key(k.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(start).not_valid_after(end)
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
                   .add_extension(x509.SubjectAlternativeName([
                       x509.DNSName("localhost"),
                       x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False))
        return builder.sign(ca_key, hashes.SHA256()), k

    paths = {k: directory / f"{name}-{k}.pem" for k in
             ("ca", "server_cert", "server_key", "client_cert", "client_key")}

    def write_cert(path: Path, cert: x509.Certificate) -> None:
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    def write_key(path: Path, k: ec.EllipticCurvePrivateKey) -> None:
        path.write_bytes(k.private_bytes(serialization.Encoding.PEM,
                                         serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()))

    write_cert(paths["ca"], ca)
    server_cert, server_key = leaf("127.0.0.1", ExtendedKeyUsageOID.SERVER_AUTH)
    client_cert, client_key = leaf("roadie client", ExtendedKeyUsageOID.CLIENT_AUTH)
    write_cert(paths["server_cert"], server_cert)
    write_key(paths["server_key"], server_key)
    write_cert(paths["client_cert"], client_cert)
    write_key(paths["client_key"], client_key)
    return paths


# --- ACL ---------------------------------------------------------------------------
#: The commands roadie needs (clients, ``roadie run``, the dashboard, ``roadie check``):
#: ``roadie.acl.COMMANDS``, as docs/connections.md shows them. Keys: ``~*`` without a
#: namespace (process and metrics keys are named after hosts and job classes),
#: ``~<namespace>:*`` with one.
ROADIE_ACL_COMMANDS = acl_rule()
