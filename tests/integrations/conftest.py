"""Fixtures of the framework-integration tests: real framework apps (the example Flask
app ``shop``, the example Django site), real Redis, and real subprocesses (``manage.py
roadie run``, ``flask roadie run``).

When a test fails, the tail of every subprocess's output is attached to its report
(the shared ``make_harness``, tests/support/fixtures.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest
from framework_support import EXAMPLES
from support.fixtures import HarnessFactory
from support.procs import Proc

import roadie
import roadie.current
from roadie.config import Config


@pytest.fixture
def spawn(make_harness: HarnessFactory, redis_url: str) -> Callable[..., Proc]:
    """``spawn(argv, env=..., cwd=...)`` starts a process on the session's Redis
    (``base_env`` and ``FAST_ENV`` under ``env``) that dies with the test."""
    return make_harness(redis_url).start


@pytest.fixture(autouse=True)
def keep_default_client() -> Iterator[None]:
    """Integrations set roadie's default client (``roadie.configure``); put it back."""
    # The block's default is today's; on leaving it, the one before comes back.
    with roadie.current.using(roadie.current.configured()):
        yield


@pytest.fixture
def shop(import_from: Callable[[Path, str], ModuleType]) -> ModuleType:
    """The example Flask app's package (examples/flask_site/shop): ``create_app``, ``rd``."""
    return import_from(EXAMPLES / "flask_site", "shop")


@pytest.fixture(scope="session")
def django_site(redis_url: str,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """Django set up once for the session on the example site's settings
    (examples/django_site, on ``sys.path`` while the session's tests use it)."""
    import django
    from django.core.management import call_command

    base = tmp_path_factory.mktemp("djsite")
    env = {
        "DJANGO_SETTINGS_MODULE": "djsite.settings",
        "DJSITE_DB": str(base / "db.sqlite3"),
        "DJSITE_MAIL_DIR": str(base / "mail"),
        "REDIS_URL": redis_url,
    }
    # Django imports the site's modules (urls, views, models) whenever it needs them:
    # its folder stays on sys.path until the session's end, not one test's.
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(EXAMPLES / "django_site"))
        with pytest.MonkeyPatch.context() as setup_env:
            for name, value in env.items():
                setup_env.setenv(name, value)
            # The app's ready() makes its client the default: not for the rest of the
            # session.
            with roadie.current.using(roadie.current.configured()):
                django.setup()  # reads the settings, which read the environment
        call_command("migrate", verbosity=0)
        yield SimpleNamespace(env=env, mail_dir=base / "mail")


@pytest.fixture
def site(django_site: SimpleNamespace, config: Config) -> Iterator[SimpleNamespace]:
    """The example site on the test's (emptied) Redis, with no accounts."""
    from accounts.models import Account

    Account.objects.all().delete()
    roadie.configure(config)
    yield django_site
    Account.objects.all().delete()
