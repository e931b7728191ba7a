"""A five-step tour of roadie on the embedded Redis; ``make demo`` runs it.

1. starts roadie's embedded redis-server (no Redis install needed);
2. starts a real ``roadie run`` process, as you would in production;
3. handles two "signup requests": each pushes a welcome email and answers at once;
4. schedules a reminder a few seconds ahead and calls a flaky API that fails once
   and is retried;
5. waits for every job, stops the process with TERM, prints a summary, exits 0.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis

import roadie
from roadie.embedded import EmbeddedRedis

HERE = Path(__file__).resolve().parent
EXPECTED = 6  # 2 welcome emails, 2 reminders, 2 SyncRates attempts


def signup_view(user_id: int, email: str) -> float:
    """What a web view does: save the user, hand the slow work to roadie, answer."""
    from demo_jobs import ProfileReminder, WelcomeEmail

    t0 = time.perf_counter()
    WelcomeEmail.perform_async(user_id, email)
    ProfileReminder.perform_in(3, user_id)  # "tomorrow", compressed to 3 s
    return (time.perf_counter() - t0) * 1000


def wait_for(pred: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise SystemExit(f"demo: timed out after {timeout_s:.0f} s waiting for {what}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=str(HERE.parent / ".roadie" / "demo"),
                        help="folder of the embedded Redis data")
    parser.add_argument("--keep", action="store_true", help="leave Redis running at the end")
    opts = parser.parse_args()

    print("1. starting the embedded redis-server ...")
    server = EmbeddedRedis(opts.dir)
    url = server.start()
    print(f"   Redis at {url} (data in {opts.dir}, AOF on)")
    r = redis.Redis.from_url(url)
    r.flushdb()
    os.environ["REDIS_URL"] = url
    sys.path.insert(0, str(HERE))
    roadie.configure(roadie.Config(redis_url=url, redis_url_configured=True))

    print("2. starting a roadie process: roadie run -r demo_jobs -q mail,2 -q default -c 5")
    env = {**os.environ, "ROADIE_POLL_INTERVAL_AVERAGE_S": "1", "ROADIE_HEARTBEAT_INTERVAL_S": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "roadie", "run", "-r", "demo_jobs", "-q", "mail,2",
         "-q", "default", "-c", "5", "--log-level", "ERROR"],
        cwd=HERE, env=env,
    )
    try:
        wait_for(lambda: r.scard("processes") > 0, 30, "the roadie process to start")

        t0 = time.time()
        print("3. two signup requests, each answering at once:")
        for user_id, email in ((1, "ada@example.com"), (2, "grace@example.com")):
            ms = signup_view(user_id, email)
            print(f"   POST /signup {email}: answered in {ms:.2f} ms (jobs pushed)")

        print("4. calling a flaky outside API in the background (fails once, is retried)")
        from demo_jobs import SyncRates

        SyncRates.perform_async("EUR")

        print("   events as the roadie process reports them:")
        seen = 0

        def progress() -> bool:
            nonlocal seen
            events = r.lrange("demo:events", seen, -1)
            for raw in events:
                at, _, text = raw.decode().partition(" ")
                print(f"   +{float(at) - t0:5.1f} s  {text}")
            seen += len(events)
            return seen >= EXPECTED

        wait_for(progress, 60, "the jobs to run")
    finally:
        print("5. stopping the roadie process with TERM ...")
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    processed = int(r.get("stat:processed") or 0)
    failed = int(r.get("stat:failed") or 0)
    print("\nSummary")
    print(f"   roadie process exit code: {code}")
    print(f"   job runs: {processed} processed, {failed} failed and retried")
    print(f"   left in queues: {sum(r.llen(f'queue:{q.decode()}') for q in r.smembers('queues'))}, "
          f"retry set: {r.zcard('retry')}, dead set: {r.zcard('dead')}")
    ok = code == 0 and processed == EXPECTED and failed == 1 and r.zcard("retry") == 0
    if not opts.keep:
        server.stop()
        print("   embedded Redis stopped")
    else:
        print(f"   embedded Redis left running at {url}: `roadie embedded stop --dir {opts.dir}`")
    print("demo OK" if ok else "demo FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
