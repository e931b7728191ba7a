"""The signup story (examples/signup/run_story.py) as a user runs it: a subprocess that
starts the embedded Redis, the outside world, the FastAPI site and a real ``roadie
run``, drives signups and a webhook over HTTP, and exits 0 once everything arrived."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from framework_support import EXAMPLES, PYTHON

pytestmark = pytest.mark.system

STORY = EXAMPLES / "signup" / "run_story.py"


def test_the_story(tmp_path: Path) -> None:
    report = tmp_path / "arrived.json"
    done = subprocess.run(
        [PYTHON, str(STORY), "--dir", str(tmp_path / "s"), "--json", str(report)],
        capture_output=True, text=True, timeout=180, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.rstrip().endswith("story OK")
    assert "the roadie process: exit code 0" in done.stdout
    # The story fetched the mounted dashboard (a PROBLEM line otherwise) and printed its link.
    assert re.search(r"roadie's dashboard: http://127\.0\.0\.1:\d+/roadie/", done.stdout)

    arrived = json.loads(report.read_text())
    mails = sorted((m["from"], m["to"], m["subject"], m["body"]) for m in arrived["mails"])
    sender = "Signup <hello@signup.example>"
    welcome = ("Hi {0},\n\nThanks for signing up. Tell us a little about yourself on your "
               "profile page.\n")
    reminder = ("Hi {0},\n\nYour profile is still empty: a few words about yourself help "
                "others find you.\n")
    assert mails == sorted([
        (sender, "ada@example.com", "Welcome to Signup, Ada!", welcome.format("Ada")),
        (sender, "grace@example.com", "Welcome to Signup, Grace!", welcome.format("Grace")),
        (sender, "linus@example.com", "Welcome to Signup, Linus!", welcome.format("Linus")),
        (sender, "ada@example.com", "Finish your profile", reminder.format("Ada")),
        (sender, "linus@example.com", "Finish your profile", reminder.format("Linus")),
    ])
    assert [(s["id"], s["to"], s["body"]) for s in arrived["sms"]] == [
        ("SM0001", "+33 6 12 34 56 78",
         "Hi Ada, your package 1Z999AA10123456784 was picked up by the carrier."),
    ]
    users = {u["name"]: u for u in arrived["users"]}
    assert {n: u["reminder"] for n, u in users.items()} == {
        "Ada": "sent", "Grace": "not needed", "Linus": "sent"
    }
    assert users["Grace"]["bio"] == "Compilers, and the odd moth."
    assert all(u["welcomed_at"] >= u["created_at"] for u in users.values())

    rates = arrived["rates"]
    assert rates["base"] == "EUR"
    assert sorted(rates["rates"]) == ["CHF", "GBP", "JPY", "USD"]
    assert 2 <= rates["fetches"] <= arrived["rates_api_calls"]
    # One response time printed per request the story made.
    times = [float(ms) for ms in re.findall(r" in\s+([\d.]+) ms", done.stdout)]
    assert len(times) == 5
