"""The site's data, in sqlite: users and the latest exchange rates.

The web app and the roadie process both open the same file; WAL mode lets one write
while the other reads.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from signup.settings import settings

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    phone TEXT,
    bio TEXT,
    created_at REAL NOT NULL,
    welcomed_at REAL,
    reminder TEXT              -- NULL until the reminder ran: 'sent' or 'not needed'
);
CREATE TABLE IF NOT EXISTS rates (
    id INTEGER PRIMARY KEY,
    base TEXT NOT NULL,
    rates TEXT NOT NULL,       -- JSON object, currency -> rate
    published_at REAL NOT NULL,
    fetched_at REAL NOT NULL
);
"""


@contextmanager
def connect() -> Iterator[sqlite3.Connection]:
    """One connection, one transaction: committed at the end of the block."""
    conn = sqlite3.connect(settings.database, timeout=10)
    conn.row_factory = sqlite3.Row
    try:
        with conn:
            yield conn
    finally:
        conn.close()


def init() -> None:
    with connect() as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(SCHEMA)


def create_user(email: str, name: str, phone: str | None) -> int:
    with connect() as conn:
        cur = conn.execute(
            "INSERT INTO users (email, name, phone, created_at) VALUES (?, ?, ?, ?)",
            (email, name, phone, time.time()),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid


def get_user(user_id: int) -> dict[str, Any] | None:
    with connect() as conn:
        row = conn.execute("SELECT * FROM users WHERE id = ?", (user_id,)).fetchone()
    return dict(row) if row else None


def list_users() -> list[dict[str, Any]]:
    with connect() as conn:
        return [dict(r) for r in conn.execute("SELECT * FROM users ORDER BY id")]


def complete_profile(user_id: int, bio: str) -> bool:
    with connect() as conn:
        return conn.execute("UPDATE users SET bio = ? WHERE id = ?", (bio, user_id)).rowcount == 1


def profile_complete(user: dict[str, Any]) -> bool:
    return bool((user.get("bio") or "").strip())


def mark(user_id: int, **fields: Any) -> None:
    """Set ``welcomed_at`` or ``reminder`` on a user."""
    assert set(fields) <= {"welcomed_at", "reminder"}
    with connect() as conn:
        for column, value in fields.items():
            conn.execute(f"UPDATE users SET {column} = ? WHERE id = ?", (value, user_id))


def save_rates(base: str, rates: dict[str, float], published_at: float) -> None:
    with connect() as conn:
        conn.execute(
            "INSERT INTO rates (base, rates, published_at, fetched_at) VALUES (?, ?, ?, ?)",
            (base, json.dumps(rates), published_at, time.time()),
        )


def latest_rates() -> dict[str, Any] | None:
    with connect() as conn:
        row = conn.execute("SELECT * FROM rates ORDER BY id DESC LIMIT 1").fetchone()
        count = conn.execute("SELECT COUNT(*) FROM rates").fetchone()[0]
    if row is None:
        return None
    return {"base": row["base"], "rates": json.loads(row["rates"]),
            "published_at": row["published_at"], "fetched_at": row["fetched_at"],
            "fetches": count}
