"""Roadie's exceptions.

::

    RoadieError
     +-- ConfigError            bad configuration (URL, queue spec, file, env)
     +-- RedisUnavailable       Redis cannot be reached or is unsupported
     |    +-- PushError         a push was not (all) written: Redis down, full, refusing
     +-- JobDefinitionError     a Job class or its options are wrong
     +-- UnknownJobError        a payload names a class that is not registered
     +-- MalformedPayload       a queue entry is not a valid job payload
     +-- JobCrashedProcess      a job took its process down too many times
    TypeError
     +-- ArgumentTypeError      a job argument is not JSON-native (raised at push)
"""

from __future__ import annotations


class RoadieError(Exception):
    """Base class of roadie's own errors."""


class ConfigError(RoadieError):
    """The configuration is invalid; the message says which setting and why."""


class RedisUnavailable(RoadieError):
    """Redis cannot be reached, refused us, or is too old."""


class PushError(RedisUnavailable):
    """Redis did not take a push: unreachable, the login refused, full (OOM), a
    command the ACL user may not run, a read-only replica, no reply in time. The
    message says which, and the fix; ``__cause__`` is redis-py's error. Each batch
    (one MULTI of up to ``batch_size`` jobs) is written entirely or not at all, but a
    bulk push of several batches can stop half-way:

    * ``written``: jids Redis confirmed (they will run): the batches before the
      failed one;
    * ``unconfirmed``: jids of the batch whose reply never came (the connection broke
      or timed out after sending): written entirely or not at all, there is no way
      to tell from here (pushing them again may run them twice);
    * ``not_written``: jids Redis refused or never received: the failed batch when it
      could not have run (connection refused, login failed, the MULTI refused as a
      whole), and every batch after it.
    """

    def __init__(self, message: str, *, written: list[str], unconfirmed: list[str],
                 not_written: list[str]) -> None:
        super().__init__(message)
        self.written = written
        self.unconfirmed = unconfirmed
        self.not_written = not_written


class JobDefinitionError(RoadieError):
    """A Job class, its name or its options are invalid."""


class UnknownJobError(RoadieError):
    """A payload names a job class that no loaded module registered."""


class MalformedPayload(RoadieError):
    """A queue entry is not JSON, or lacks ``class``/``args``."""


class NotInFakeMode(RoadieError, AttributeError):
    """``WelcomeEmail.jobs`` or ``roadie.testing.drain()`` outside fake mode."""


class JobCrashedProcess(RoadieError):
    """A job was running each time its process died, too many times in a row."""


class Shutdown(BaseException):
    """Raised inside a job still running when its process's stop timeout ran out.

    The job was already pushed back to its queue; this ends the abandoned run at its
    next Python instruction (as Sidekiq raises ``Sidekiq::Shutdown``), so that it does
    not finish its work after another process was given the job. A ``BaseException``:
    ``except Exception`` in a job does not swallow it. Code stuck in one C call (a
    long ``time.sleep``) sees it when the call returns.
    """


class ArgumentTypeError(TypeError):
    """A job argument is not JSON-native; nothing was pushed."""
