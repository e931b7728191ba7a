"""The signup story, end to end, on roadie's embedded Redis.

Starts everything: the embedded redis-server, a local "outside world" (an SMTP server,
an SMS provider and an exchange-rates API that record what they get), the FastAPI site
under uvicorn and a real ``roadie run`` process. Then, over HTTP, three people sign up
and one finishes their profile at once, and a carrier's webhook says a package was
picked up. It shows the mails and SMS as they arrive, the profile reminders (due
"tomorrow", compressed to a few seconds), the exchange rates the site fetched on its
periodic schedule, and exits 0 when everything arrived as it should.

    python examples/signup/run_story.py           # the story, then everything stops
    python examples/signup/run_story.py --keep    # ... then stays up: open the site
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE))

from signup.outside import OutsideWorld  # noqa: E402

from roadie.embedded import EmbeddedRedis, free_port  # noqa: E402

PEOPLE = [
    {"email": "ada@example.com", "name": "Ada", "phone": "+33 6 12 34 56 78"},
    {"email": "grace@example.com", "name": "Grace", "phone": "+1 555 0100"},
    {"email": "linus@example.com", "name": "Linus", "phone": ""},
]
TRACKING = "1Z999AA10123456784"
REMINDER_DELAY_S = 3.0
# Every 2 seconds: with six fields, seconds come last. The site's default: every 5 minutes.
RATES_CRON = "* * * * * */2"
TIMEOUT_S = 60.0


class Failed(Exception):
    pass


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # show the 303 itself, as a browser's network tab would


HTTP = urllib.request.build_opener(NoRedirect)


def http(method: str, url: str, *, form: dict[str, str] | None = None,
         json_body: Any = None) -> tuple[int, dict[str, str], bytes, float]:
    """One request: (status, headers, body, milliseconds)."""
    data, headers = None, {}
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    if json_body is not None:
        data = json.dumps(json_body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    t0 = time.perf_counter()
    try:
        with HTTP.open(request, timeout=10) as response:
            status, got, body = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        status, got, body = exc.code, dict(exc.headers), exc.read()
    return status, got, body, (time.perf_counter() - t0) * 1000


def get_json(url: str) -> Any:
    status, _, body, _ = http("GET", url)
    return json.loads(body) if status == 200 else None


class Service:
    """A child process with its output in a log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path,
                 clean_exits: tuple[int, ...] = (0,)) -> None:
        self.name = name
        self.clean_exits = clean_exits
        self.log = log
        self._out = log.open("wb")
        self.proc = subprocess.Popen(argv, cwd=HERE, env=env, stdin=subprocess.DEVNULL,
                                     stdout=self._out, stderr=subprocess.STDOUT)

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise Failed(f"{self.name} exited with code {self.proc.returncode}:\n{self.tail()}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(40)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()
        finally:
            self._out.close()

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(f"     | {line}" for line in text)


def wait_for(what: str, check: Callable[[], bool], services: list[Service],
             timeout_s: float = TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        for service in services:
            service.check_alive()
        if time.monotonic() > deadline:
            raise Failed(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.05)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=str(REPO / ".roadie" / "signup"),
                        help="working folder: embedded Redis data, the site's database, logs")
    parser.add_argument("--keep", action="store_true",
                        help="leave everything running at the end, until Ctrl-C")
    parser.add_argument("--json", metavar="PATH", help="also write what arrived as JSON")
    opts = parser.parse_args()

    work = Path(opts.dir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    for stale in ("signup.sqlite3", "signup.sqlite3-wal", "signup.sqlite3-shm", "logs"):
        path = work / stale
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    (work / "logs").mkdir()

    print("Signup story: a site that answers at once and hands its slow work to roadie\n")
    print("1. Redis: roadie's embedded redis-server")
    redis_dir = work / "redis"
    server = EmbeddedRedis(redis_dir)
    url = server.start()
    import redis

    r = redis.Redis.from_url(url)
    r.flushdb()  # this folder's Redis belongs to the story: start from nothing
    print(f"   {url} (data in {redis_dir})")

    print("2. The outside world on localhost, recording what it receives:")
    world = OutsideWorld().start()
    print(f"   mail server  smtp://127.0.0.1:{world.mail.port}")
    print(f"   SMS provider {world.sms.url}")
    print(f"   rates API    {world.rates.url}")

    port = free_port()
    site = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "REDIS_URL": f"embedded://{redis_dir}",
        **world.env(),
        "SIGNUP_DATABASE": str(work / "signup.sqlite3"),
        "SIGNUP_REMINDER_DELAY_S": str(REMINDER_DELAY_S),
        "SIGNUP_RATES_CRON": RATES_CRON,
        # A short poll so that a job due in 3 s runs within about a second of it.
        "ROADIE_POLL_INTERVAL_AVERAGE_S": "1",
        "ROADIE_HEARTBEAT_INTERVAL_S": "1",
    }
    services: list[Service] = []
    code = 1
    try:
        print(f"3. The site: uvicorn signup.web:app on {site}")
        services.append(Service(
            "the site",
            [sys.executable, "-m", "uvicorn", "signup.web:app", "--host", "127.0.0.1",
             "--port", str(port), "--log-level", "warning"],
            env, work / "logs" / "web.log",
            # uvicorn shuts down cleanly on TERM, then re-raises it (exit code -15).
            clean_exits=(0, -signal.SIGTERM),
        ))
        wait_for("the site to answer", lambda: _answers(f"{site}/health"), services)

        roadie_argv = ["roadie", "run", "-r", "signup.jobs", "-q", "mail,2", "-q", "default",
                       "-c", "5"]
        print(f"4. A roadie process: {' '.join(roadie_argv)}")
        services.append(Service(
            "the roadie process",
            [sys.executable, "-m", *roadie_argv, "--log-level", "WARNING"],
            env, work / "logs" / "roadie.log",
        ))
        wait_for("the roadie process to start", lambda: r.scard("processes") > 0, services)

        code = story(site, world, services, opts)
        if opts.keep:
            keep_running(site, url)
    except Failed as exc:
        print(f"\nstory FAILED: {exc}")
        for service in services:
            print(f"   last lines of {service.name} ({service.log}):\n{service.tail()}")
        code = 1
    finally:
        print("\nStopping")
        for service in reversed(services):
            exit_code = service.stop()
            print(f"   {service.name}: exit code {exit_code}")
            if exit_code not in service.clean_exits:
                code = 1
        world.stop()
        server.stop()
        print("   outside world and embedded Redis stopped")
    print("story OK" if code == 0 else "story FAILED")
    return code


def _answers(url: str) -> bool:
    try:
        return http("GET", url)[0] == 200
    except OSError:
        return False


def story(site: str, world: OutsideWorld, services: list[Service],
          opts: argparse.Namespace) -> int:
    print(f"5. Three people sign up (their profile reminder is due in {REMINDER_DELAY_S:g} s: "
          "'tomorrow', compressed):")
    t0 = time.time()
    ids: dict[str, int] = {}
    for person in PEOPLE:
        status, headers, _, ms = http("POST", f"{site}/signup", form=person)
        if status != 303:
            raise Failed(f"POST /signup for {person['email']} answered {status}")
        ids[person["name"]] = int(headers["location"].rsplit("/", 1)[1])
        print(f"   POST /signup {person['email']:<18} -> {status} {headers['location']}"
              f" in {ms:5.1f} ms")
    status, _, _, ms = http("POST", f"{site}/users/{ids['Grace']}/profile",
                            form={"bio": "Compilers, and the odd moth."})
    print(f"   POST /users/{ids['Grace']}/profile (Grace completes her profile) -> {status}"
          f" in {ms:5.1f} ms")

    print("6. The carrier's webhook: Ada's package was picked up")
    event = {"user_id": ids["Ada"], "tracking_number": TRACKING}
    status, _, body, ms = http("POST", f"{site}/webhooks/package-picked-up", json_body=event)
    if status != 202:
        raise Failed(f"the webhook answered {status}: {body!r}")
    print(f"   POST /webhooks/package-picked-up -> {status} in {ms:5.1f} ms")

    print("7. Meanwhile, in the background (times from the first signup):")
    shown = {"mail": 0, "sms": 0}

    def progress() -> bool:
        mails, sms = world.mail.received(), world.sms.received()
        for m in mails[shown["mail"]:]:
            print(f"   +{m['received_at'] - t0:4.1f} s  mail to {m['to']:<18} {m['subject']!r}")
        for s in sms[shown["sms"]:]:
            print(f"   +{s['received_at'] - t0:4.1f} s  SMS  to {s['to']:<18} {s['body']!r}")
        shown.update(mail=len(mails), sms=len(sms))
        users = get_json(f"{site}/api/users") or []
        rates = get_json(f"{site}/api/rates")
        return (len(mails) >= 5 and len(sms) >= 1
                and all(u["reminder"] is not None for u in users)
                and rates is not None and rates["fetches"] >= 2)

    wait_for("the mails, the SMS, the reminders and two rate fetches", progress, services)

    users = {u["name"]: u for u in get_json(f"{site}/api/users")}
    rates = get_json(f"{site}/api/rates")
    home = http("GET", f"{site}/")[2].decode()
    board_status, _, board, _ = http("GET", f"{site}/roadie/")
    mails, sms = world.mail.received(), world.sms.received()
    print("\nWhat arrived")
    print(f"   mail server: {len(mails)} mails")
    for m in mails:
        print(f"     to {m['to']:<18} {m['subject']!r}")
    print(f"   SMS provider: {len(sms)} SMS")
    for s in sms:
        print(f"     to {s['to']:<18} {s['body']!r}")
    print("   profile reminders: " + ", ".join(f"{n} {u['reminder']}" for n, u in users.items()))
    shown_rates = ", ".join(f"{v} {c}" for c, v in rates["rates"].items())
    print(f"   the site shows 1 {rates['base']} = {shown_rates} "
          f"(fetch {rates['fetches']} of the periodic job; see GET / and GET /api/rates)")
    print(f"   roadie's dashboard: {site}/roadie/ (processed jobs, queues, retries, periodic)")

    expected_mails = sorted([
        ("ada@example.com", "Welcome to Signup, Ada!"),
        ("grace@example.com", "Welcome to Signup, Grace!"),
        ("linus@example.com", "Welcome to Signup, Linus!"),
        ("ada@example.com", "Finish your profile"),
        ("linus@example.com", "Finish your profile"),
    ])
    expected_sms = [("+33 6 12 34 56 78",
                     f"Hi Ada, your package {TRACKING} was picked up by the carrier.")]
    expected_reminders = {"Ada": "sent", "Grace": "not needed", "Linus": "sent"}
    problems = []
    if sorted((m["to"], m["subject"]) for m in mails) != expected_mails:
        problems.append(f"mails: expected {expected_mails}")
    if [(s["to"], s["body"]) for s in sms] != expected_sms:
        problems.append(f"SMS: expected {expected_sms}")
    if {n: u["reminder"] for n, u in users.items()} != expected_reminders:
        problems.append(f"reminders: expected {expected_reminders}")
    if not all(u["welcomed_at"] for u in users.values()):
        problems.append("some users were not marked as welcomed")
    if not all(name in home for name in users) or "Rates for 1 EUR" not in home:
        problems.append("the home page does not show the users and the rates")
    if board_status != 200 or b"roadie" not in board:
        problems.append(f"the dashboard at /roadie/ answered {board_status}")
    if opts.json:
        Path(opts.json).write_text(json.dumps(
            {"mails": mails, "sms": sms, "users": list(users.values()), "rates": rates,
             "rates_api_calls": world.rates.calls},
            indent=2,
        ))
    for problem in problems:
        print(f"   PROBLEM: {problem}")
    return 1 if problems else 0


def keep_running(site: str, url: str) -> None:
    print(f"\nEverything keeps running: open {site} (Ctrl-C to stop)")
    print(f"   roadie's dashboard: {site}/roadie/")
    print(f"   roadie's Redis: {url}")
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()


if __name__ == "__main__":
    sys.exit(main())
