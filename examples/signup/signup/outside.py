"""The outside world of the story, on localhost: a mail server, an SMS provider and an
exchange-rates API. Each records what it receives, so the story can show it.

* ``MailServer``: a real SMTP server (aiosmtpd) that keeps every message.
* ``SmsProvider``: ``POST /v1/messages`` ``{"to", "body"}`` -> 201 ``{"id"}``; a request
  with an ``Idempotency-Key`` it has seen returns the first answer and sends nothing.
  ``GET /v1/messages`` lists what was sent.
* ``RatesApi``: ``GET /v1/latest?base=EUR``; the rates move a little at every call.

``python -m signup.outside`` runs all three until Ctrl-C.
"""

from __future__ import annotations

import email
import email.policy
import json
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiosmtpd.controller import Controller

from roadie.embedded import free_port


class MailServer:
    """An SMTP server on 127.0.0.1 that keeps the messages it receives."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.messages: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        body = message.get_body(("plain",))
        with self._lock:
            self.messages.append({
                "received_at": time.time(),
                "from": str(message["From"]),
                "to": str(message["To"]),
                "subject": str(message["Subject"]),
                "body": body.get_content().replace("\r\n", "\n") if body is not None else "",
            })
        return "250 Message accepted for delivery"

    def received(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.messages)

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()


class _JsonServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", port), handler)
        self.thread = threading.Thread(target=self.serve_forever, name=type(self).__name__,
                                       daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self.thread.join(10)


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the story prints what matters

    def reply(self, status: int, data: Any) -> None:
        body = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class SmsProvider(_JsonServer):
    """A stand-in for an SMS provider's HTTP API; keeps every message it "sends"."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.messages: list[dict[str, Any]] = []
        self._by_key: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        provider = self

        class Handler(_Handler):
            def do_POST(self) -> None:
                if self.path != "/v1/messages":
                    self.reply(404, {"error": "not found"})
                    return
                try:
                    data = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                    to, text = str(data["to"]), str(data["body"])
                except (ValueError, KeyError, TypeError):
                    self.reply(400, {"error": "expected JSON {\"to\": ..., \"body\": ...}"})
                    return
                status, answer = provider.send(to, text, self.headers.get("Idempotency-Key"))
                self.reply(status, answer)

            def do_GET(self) -> None:
                self.reply(200, provider.received())

        super().__init__(self.port, Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/messages"

    def send(self, to: str, text: str, key: str | None) -> tuple[int, dict[str, Any]]:
        with self._lock:
            if key is not None and key in self._by_key:
                return 200, self._by_key[key]
            message = {"id": f"SM{len(self.messages) + 1:04d}", "to": to, "body": text,
                       "received_at": time.time()}
            self.messages.append(message)
            if key is not None:
                self._by_key[key] = message
            return 201, message

    def received(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.messages)


class RatesApi(_JsonServer):
    """A stand-in for an exchange-rates API whose rates move at every call."""

    START = {"USD": 1.0800, "GBP": 0.8500, "JPY": 161.00, "CHF": 0.9400}

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.calls = 0
        self._lock = threading.Lock()
        api = self

        class Handler(_Handler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path != "/v1/latest":
                    self.reply(404, {"error": "not found"})
                    return
                base = parse_qs(parts.query).get("base", ["EUR"])[0]
                if base != "EUR":
                    self.reply(400, {"error": "this demo API only knows base=EUR"})
                    return
                self.reply(200, api.latest())

        super().__init__(self.port, Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/latest"

    def latest(self) -> dict[str, Any]:
        with self._lock:
            self.calls += 1
            n = self.calls
        # A deterministic wobble: every call gives different rates.
        drift = ((n * 7) % 11 - 5) / 1000
        rates = {c: round(v * (1 + drift + n / 10_000), 4) for c, v in self.START.items()}
        return {"base": "EUR", "rates": rates, "published_at": time.time(), "sequence": n}


class OutsideWorld:
    """All three, started and stopped together."""

    def __init__(self) -> None:
        self.mail = MailServer()
        self.sms = SmsProvider()
        self.rates = RatesApi()

    def start(self) -> OutsideWorld:
        self.mail.start()
        self.sms.start()
        self.rates.start()
        return self

    def stop(self) -> None:
        self.rates.stop()
        self.sms.stop()
        self.mail.stop()

    def env(self) -> dict[str, str]:
        """The ``SIGNUP_*`` settings pointing the site at this world."""
        return {
            "SIGNUP_SMTP_HOST": "127.0.0.1",
            "SIGNUP_SMTP_PORT": str(self.mail.port),
            "SIGNUP_SMS_URL": self.sms.url,
            "SIGNUP_RATES_URL": self.rates.url,
        }


def main() -> None:
    world = OutsideWorld().start()
    print("outside world running; point the site at it with:")
    for key, value in world.env().items():
        print(f"  export {key}={value}")
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    world.stop()
    print(f"received {len(world.mail.received())} mails, {len(world.sms.received())} SMS")


if __name__ == "__main__":
    main()
