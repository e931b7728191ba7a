"""The jobs of the demo: what a small web app hands to roadie.

Each job writes what it does to the Redis list ``demo:events`` so that the demo
script can show it as it happens (a real app would send mail, SMS, ...).
"""

from __future__ import annotations

import os
import time

import redis

import roadie

_redis = redis.Redis.from_url(os.environ["REDIS_URL"])


def event(text: str) -> None:
    _redis.rpush("demo:events", f"{time.time():.3f} {text}")


class WelcomeEmail(roadie.Job, queue="mail"):
    def perform(self, user_id: int, email: str) -> None:
        event(f"WelcomeEmail: sent a welcome email to {email} (user {user_id})")


class ProfileReminder(roadie.Job):
    def perform(self, user_id: int) -> None:
        event(f"ProfileReminder: reminded user {user_id} to finish their profile")


class SyncRates(roadie.Job, retry=3):
    """Calls an outside API that fails the first time, as outside APIs do."""

    @classmethod
    def retry_in(cls, count: int, exc: BaseException, payload: dict[str, object]) -> float:
        return 1.0  # the demo compresses time; the default backoff starts at 15 s

    def perform(self, currency: str) -> None:
        attempt = _redis.incr(f"demo:attempts:{self.jid}")
        if attempt == 1:
            event(f"SyncRates: attempt {attempt} for {currency} failed (API timed out)")
            raise TimeoutError("rates API did not answer within 2 s")
        event(f"SyncRates: attempt {attempt} for {currency} succeeded")
