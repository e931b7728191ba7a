"""The site's settings, read from the environment (``SIGNUP_*``) by the web app and the
roadie process alike. Redis is ``REDIS_URL``, read by roadie itself."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    database: Path
    smtp_host: str
    smtp_port: int
    mail_from: str
    #: The SMS provider's "send a message" endpoint.
    sms_url: str
    #: The exchange-rates API's "latest rates" endpoint.
    rates_url: str
    #: How long after signing up a user is reminded to finish their profile.
    reminder_delay_s: float
    #: When the rates are fetched (cron; six fields means seconds last).
    rates_cron: str


def load() -> Settings:
    env = os.environ
    return Settings(
        database=Path(env.get("SIGNUP_DATABASE", "signup.sqlite3")),
        smtp_host=env.get("SIGNUP_SMTP_HOST", "127.0.0.1"),
        smtp_port=int(env.get("SIGNUP_SMTP_PORT", "25")),
        mail_from=env.get("SIGNUP_MAIL_FROM", "Signup <hello@signup.example>"),
        sms_url=env.get("SIGNUP_SMS_URL", "http://127.0.0.1:8026/v1/messages"),
        rates_url=env.get("SIGNUP_RATES_URL", "http://127.0.0.1:8027/v1/latest"),
        reminder_delay_s=float(env.get("SIGNUP_REMINDER_DELAY_S", str(24 * 3600))),
        rates_cron=env.get("SIGNUP_RATES_CRON", "*/5 * * * *"),
    )


settings = load()
