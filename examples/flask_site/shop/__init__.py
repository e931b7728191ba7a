"""The shop's app factory: ``flask --app shop run`` / ``flask --app shop roadie run``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from flask import Flask

from roadie.contrib.flask import Roadie

rd = Roadie()


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.from_mapping(
        ROADIE_REDIS_URL=os.environ.get("REDIS_URL", "embedded://.roadie/redis"),
        ROADIE_QUEUES=["mail,2", "default"],
        ROADIE_REQUIRE=["shop.jobs"],
        OUTBOX_DIR=os.environ.get("SHOP_OUTBOX_DIR", "outbox"),
    )
    if test_config:
        app.config.update(test_config)
    rd.init_app(app)

    from shop import views

    app.register_blueprint(views.bp)
    return app
