"""The shop's jobs. ``flask roadie run`` runs each inside the app's context."""

from __future__ import annotations

from pathlib import Path

from flask import current_app

import roadie


class SendReceipt(roadie.Job, queue="mail"):
    def perform(self, order_id: int, email: str, total_cents: int) -> None:
        outbox = Path(current_app.config["OUTBOX_DIR"])
        outbox.mkdir(parents=True, exist_ok=True)
        (outbox / f"receipt-{order_id}.txt").write_text(
            f"To: {email}\nOrder {order_id}: {total_cents / 100:.2f} EUR. Thank you!\n"
        )
