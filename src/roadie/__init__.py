"""roadie: background jobs for Python on Redis, in Sidekiq's format, losing nothing.

::

    import roadie

    class WelcomeEmail(roadie.Job, queue="mail"):
        def perform(self, user_id: int) -> None:
            ...

    WelcomeEmail.perform_async(42)          # from a web view: returns at once
    # and in a shell:  roadie run -r myapp.jobs -q mail -q default
"""

from roadie.client import Client, configure, get_client, push, redis_client
from roadie.config import Config
from roadie.cron import Schedule, Schedules, default_schedules, periodic
from roadie.errors import (
    ArgumentTypeError,
    ConfigError,
    JobCrashedProcess,
    JobDefinitionError,
    MalformedPayload,
    PushError,
    RedisUnavailable,
    RoadieError,
    UnknownJobError,
)
from roadie.job import Job, JobFunction, JobSetter, job
from roadie.middleware import Hooks, hooks
from roadie.registry import Registry, default_registry
from roadie.version import VERSION

__version__ = VERSION

__all__ = [
    "ArgumentTypeError",
    "Client",
    "Config",
    "ConfigError",
    "Hooks",
    "Job",
    "JobCrashedProcess",
    "JobDefinitionError",
    "JobFunction",
    "JobSetter",
    "MalformedPayload",
    "PushError",
    "RedisUnavailable",
    "Registry",
    "RoadieError",
    "Schedule",
    "Schedules",
    "UnknownJobError",
    "__version__",
    "configure",
    "default_registry",
    "default_schedules",
    "get_client",
    "hooks",
    "job",
    "periodic",
    "push",
    "redis_client",
]
