from __future__ import annotations

import itertools
from typing import Any

from flask import Blueprint, request

from shop.jobs import SendReceipt

bp = Blueprint("shop", __name__)
_order_ids = itertools.count(1)  # a real shop has a database


@bp.post("/orders")
def create_order() -> tuple[dict[str, Any], int]:
    data = request.get_json()
    order_id = next(_order_ids)
    jid = SendReceipt.perform_async(order_id, data["email"], int(data["total_cents"]))
    return {"order_id": order_id, "receipt_jid": jid}, 202
