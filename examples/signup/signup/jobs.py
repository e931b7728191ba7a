"""The site's jobs: everything that must not hold up a web request.

``roadie run -r signup.jobs -q mail,2 -q default`` runs them. Jobs take ids, not
objects, and read the row when they run; roadie delivers a job at least once, so each
one is safe to run twice (the SMS carries an idempotency key, the reminder records
that it ran).
"""

from __future__ import annotations

import json
import logging
import smtplib
import time
import urllib.parse
import urllib.request
from email.message import EmailMessage

import roadie
from signup import db
from signup.settings import settings

log = logging.getLogger("signup")


def send_email(to: str, subject: str, body: str) -> None:
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=10) as smtp:
        smtp.send_message(message)


class WelcomeEmail(roadie.Job, queue="mail", retry=5):
    def perform(self, user_id: int) -> None:
        user = db.get_user(user_id)
        if user is None:
            return  # deleted since: nobody to welcome
        send_email(
            user["email"],
            f"Welcome to Signup, {user['name']}!",
            f"Hi {user['name']},\n\nThanks for signing up. Tell us a little about yourself "
            "on your profile page.\n",
        )
        db.mark(user_id, welcomed_at=time.time())


class ProfileReminder(roadie.Job, queue="mail"):
    """Pushed at signup for the next day; sends nothing if the profile is complete."""

    def perform(self, user_id: int) -> None:
        user = db.get_user(user_id)
        if user is None or user["reminder"] is not None:
            return  # gone, or already reminded (a second delivery)
        if db.profile_complete(user):
            db.mark(user_id, reminder="not needed")
            return
        send_email(
            user["email"],
            "Finish your profile",
            f"Hi {user['name']},\n\nYour profile is still empty: a few words about "
            "yourself help others find you.\n",
        )
        db.mark(user_id, reminder="sent")


class PackagePickedUpSms(roadie.Job, retry=10):
    """Texts the user when the carrier's webhook says their package was picked up."""

    def perform(self, user_id: int, tracking_number: str) -> None:
        user = db.get_user(user_id)
        if user is None or not user["phone"]:
            log.warning("no phone number for user %s; SMS for %s not sent",
                        user_id, tracking_number)
            return
        body = json.dumps({
            "to": user["phone"],
            "body": f"Hi {user['name']}, your package {tracking_number} was picked up "
                    "by the carrier.",
        }).encode()
        request = urllib.request.Request(
            settings.sms_url, data=body, method="POST",
            headers={"Content-Type": "application/json",
                     # The provider sends a retried request once only.
                     "Idempotency-Key": self.jid},
        )
        # A non-2xx answer raises HTTPError: roadie retries the job with backoff.
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()


class SyncRates(roadie.Job):
    """Fetches the latest exchange rates from the outside API and stores them."""

    def perform(self, base: str) -> None:
        url = f"{settings.rates_url}?{urllib.parse.urlencode({'base': base})}"
        with urllib.request.urlopen(url, timeout=10) as response:
            data = json.load(response)
        db.save_rates(data["base"], data["rates"], data["published_at"])


# Every few minutes, once for the whole cluster however many roadie processes run.
roadie.periodic(settings.rates_cron, SyncRates, args=["EUR"])
