"""Settings of the example site. The roadie part is ``INSTALLED_APPS`` and ``ROADIE``."""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "example-site-not-secret"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "roadie.contrib.django",
    "accounts",
]
# Sessions and auth: the admin login that guards the dashboard at /roadie/.
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]},
}]
ROOT_URLCONF = "djsite.urls"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DJSITE_DB", BASE_DIR / "db.sqlite3"),
        # Each request is one transaction: the view's jobs are pushed at its commit.
        "ATOMIC_REQUESTS": True,
        "OPTIONS": {"timeout": 20},
    }
}

ROADIE = {
    "REDIS_URL": os.environ.get("REDIS_URL", "embedded://.roadie/redis"),
    "QUEUES": ["mail,2", "default"],
    "CONCURRENCY": 5,
}

EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
EMAIL_FILE_PATH = os.environ.get("DJSITE_MAIL_DIR", BASE_DIR / "sent-mail")
DEFAULT_FROM_EMAIL = "hello@example.com"
