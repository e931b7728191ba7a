"""Jobs: ``class WelcomeEmail(roadie.Job)`` with one method, ``perform``.

Options are class keywords, as Sidekiq's ``sidekiq_options``::

    class WelcomeEmail(roadie.Job, queue="mail", retry=5):
        def perform(self, user_id: int) -> None: ...

    WelcomeEmail.perform_async(42)
    WelcomeEmail.perform_in(timedelta(days=1), 42)
    WelcomeEmail.set(queue="critical").perform_async(42)

The job's *name* (the payload's ``class``) defaults to ``module.QualName`` and can
be set with ``name="ResizeImage"`` to match a Ruby class.
"""

from __future__ import annotations

import inspect
import time
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar, Generic, Literal, Never, TypeVar, overload

from roadie import current
from roadie import payload as pl
from roadie.client import get_client
from roadie.errors import JobDefinitionError
from roadie.payload import Payload
from roadie.pushcheck import ANY_ARITY, Arity, arity_of, signature_error, to_epoch, to_seconds
from roadie.registry import Registry, default_registry

RetryDecision = float | int | Literal["kill", "discard"] | None


def validate_options(options: dict[str, Any], where: str) -> dict[str, Any]:
    """Check option types; raise ``JobDefinitionError`` naming the bad one."""
    q = options.get("queue")
    if "queue" in options and (not isinstance(q, str) or not q):
        raise JobDefinitionError(f"{where}: queue must be a non-empty string, got {q!r}")
    if "retry" in options:
        r = options["retry"]
        if not isinstance(r, (bool, int)) or (not isinstance(r, bool) and r < 0):
            raise JobDefinitionError(
                f"{where}: retry must be True, False or a number of retries >= 0, got {r!r}"
            )
    rq = options.get("retry_queue")
    if "retry_queue" in options and (not isinstance(rq, str) or not rq):
        raise JobDefinitionError(f"{where}: retry_queue must be a non-empty string")
    if "dead" in options and not isinstance(options["dead"], bool):
        raise JobDefinitionError(f"{where}: dead must be True or False")
    bt = options.get("backtrace")
    if "backtrace" in options and not isinstance(bt, (bool, int)):
        raise JobDefinitionError(f"{where}: backtrace must be a bool or a number of lines")
    tags = options.get("tags")
    if "tags" in options and (
        not isinstance(tags, (list, tuple)) or not all(isinstance(t, str) for t in tags)
    ):
        raise JobDefinitionError(f"{where}: tags must be a list of strings")
    if "tags" in options:
        options = {**options, "tags": list(tags or ())}
    return options


class _FakeJobs:
    """``WelcomeEmail.jobs``: the jobs pushed in fake mode (see ``roadie.testing``)."""

    def __get__(self, obj: object, owner: type[Job]) -> list[Payload]:
        return current.kept_jobs(owner.name)


class Job:
    """Base class of every job. Subclass it and define ``perform``."""

    #: The payload ``class`` this job is pushed and found under.
    name: ClassVar[str] = "roadie.Job"
    #: Options merged under every payload pushed by this class.
    options: ClassVar[dict[str, Any]] = {}
    #: True when ``perform`` is a coroutine function.
    is_async: ClassVar[bool] = False
    registry: ClassVar[Registry] = default_registry
    #: ``perform``'s ``Arity``, found on the first push (``JobSetter.check``).
    _roadie_arity: ClassVar[Arity | None] = None

    #: Set on the instance before ``perform`` runs.
    jid: str
    payload: Payload
    #: In fake mode (``roadie.testing.fake()``), the payloads pushed for this class.
    jobs = _FakeJobs()

    def __init_subclass__(
        cls,
        *,
        name: str | None = None,
        registry: Registry | None = None,
        abstract: bool = False,
        **options: Any,
    ) -> None:
        super().__init_subclass__()
        # Each class finds its own: a subclass may define another perform.
        cls._roadie_arity = None
        where = f"{cls.__module__}.{cls.__qualname__}"
        merged = {**getattr(cls, "options", {}), **validate_options(options, where)}
        cls.options = merged
        if registry is not None:
            cls.registry = registry
        cls.is_async = inspect.iscoroutinefunction(cls.perform)
        if abstract:
            return
        if cls.perform is Job.perform:
            raise JobDefinitionError(f"{where} must define perform(self, ...)")
        cls.name = name or where
        cls.registry.register(cls.name, cls)

    def perform(self, *args: Any) -> Any:
        raise NotImplementedError

    # --- retry policy hooks (override as classmethods) ---------------------
    @classmethod
    def retry_in(cls, count: int, exc: BaseException, payload: Payload) -> RetryDecision:
        """Seconds until the next attempt, "kill", "discard", or None for the default."""
        return None

    @classmethod
    def retries_exhausted(cls, payload: Payload, exc: BaseException) -> str | None:
        """Called when retries run out; return "discard" to skip the dead set."""
        return None

    # --- pushing -----------------------------------------------------------
    @classmethod
    def set(cls, **options: Any) -> JobSetter:
        """Per-push options: ``WelcomeEmail.set(queue="critical").perform_async(1)``."""
        return JobSetter(cls.name, {**cls.options, **validate_options(options, cls.name)}, cls)

    @classmethod
    def perform_async(cls, *args: Any, **kwargs: Never) -> str | None:
        return JobSetter(cls.name, cls.options, cls).perform_async(*args, **kwargs)

    @classmethod
    def perform_in(cls, interval: float | timedelta, *args: Any, **kwargs: Never
                   ) -> str | None:
        return JobSetter(cls.name, cls.options, cls).perform_in(interval, *args, **kwargs)

    @classmethod
    def perform_at(cls, when: datetime | float, *args: Any, **kwargs: Never) -> str | None:
        return JobSetter(cls.name, cls.options, cls).perform_at(when, *args, **kwargs)

    @classmethod
    def perform_bulk(
        cls, args_list: Iterable[Sequence[Any]], *, batch_size: int = 1000
    ) -> list[str | None]:
        return JobSetter(cls.name, cls.options, cls).perform_bulk(
            args_list, batch_size=batch_size)


class JobSetter:
    """A job name plus per-push options; what ``Job.set(...)`` returns.

    Built from a Job class, it checks each push against the class: the arguments
    must fit ``perform``'s signature, and a class defined in ``__main__`` is refused
    (see ``check``). Built from a name alone, it checks nothing.
    """

    def __init__(self, name: str, options: dict[str, Any],
                 job_cls: type[Job] | None = None) -> None:
        self.name = name
        self.options = options
        self.job_cls = job_cls

    def item(self, args: Sequence[Any], kwargs: Mapping[str, Any] | None = None,
             *, client: Any = None) -> dict[str, Any]:
        """The item that pushes ``args``, after ``check``: for the pushing clients
        (``roadie.aio`` and ``roadie.contrib.django`` build theirs here too)."""
        self.check(args, kwargs, client)
        return {**self.options, "args": list(args), "class": self.name}

    def check(self, args: Sequence[Any], kwargs: Mapping[str, Any] | None = None,
              client: Any = None, *, arguments: bool = True) -> None:
        """Refuse, before anything is written, a push that no worker could run:
        keyword arguments, arguments that do not fit ``perform`` (unless not
        ``arguments``), a job of ``__main__`` (unless ``client`` runs jobs in this
        process: ``roadie.testing``)."""
        if kwargs:
            raise TypeError(
                f"{self.name}: got keyword arguments {', '.join(map(repr, kwargs))}; job "
                "arguments are positional only (a JSON list), in perform's order. "
                "Nothing was pushed"
            )
        job_cls = self.job_cls
        if job_cls is None:
            return
        least, most = job_cls._roadie_arity or arity_of(job_cls)
        if arguments and not least <= len(args) <= most:
            raise signature_error(job_cls, self.name, args)
        if self.name.startswith("__main__.") and not getattr(
            client, "runs_jobs_in_process", False
        ):
            raise JobDefinitionError(
                f"{self.name} is defined in __main__ (the script being run), so a roadie "
                "worker can never import it under that name: nothing was pushed. Move the "
                "job into a module (e.g. jobs.py) that this script imports and that "
                "`roadie run -r jobs` loads, or give it name=... as registered there"
            )

    def perform_async(self, *args: Any, **kwargs: Never) -> str | None:
        client = get_client()
        return client.push(self.item(args, kwargs, client=client))

    def perform_in(self, interval: float | timedelta, *args: Any, **kwargs: Never
                   ) -> str | None:
        at = time.time() + to_seconds(interval, f"{self.name}.perform_in")
        return self._push_at(at, args, kwargs)

    def perform_at(self, when: datetime | float, *args: Any, **kwargs: Never) -> str | None:
        return self._push_at(to_epoch(when, f"{self.name}.perform_at"), args, kwargs)

    def _push_at(self, at: float, args: Sequence[Any], kwargs: Mapping[str, Any]
                 ) -> str | None:
        client = get_client()
        item = self.item(args, kwargs, client=client)
        if at > time.time():
            item["at"] = at
        return client.push(item)

    def bulk_items(self, args_list: Iterable[Sequence[Any]], *, client: Any = None
                   ) -> list[dict[str, Any]]:
        """The items of ``perform_bulk``, every one checked before any is pushed."""
        self.check((), None, client, arguments=False)  # once: what all the jobs share
        job_cls, name, options = self.job_cls, self.name, self.options
        least, most = (
            ANY_ARITY if job_cls is None else job_cls._roadie_arity or arity_of(job_cls)
        )
        items = []
        for i, args in enumerate(args_list):
            if not isinstance(args, (list, tuple)):
                raise TypeError(
                    f"{name}.perform_bulk: args_list holds one argument list per job; "
                    f"its item {i} is {pl.short_repr(args)}, not a list (write [[1], [2]] "
                    "for two jobs of one argument). Nothing was pushed"
                )
            if job_cls is not None and not least <= len(args) <= most:
                raise signature_error(job_cls, name, args)
            items.append({**options, "args": list(args), "class": name})
        return items

    def perform_bulk(
        self, args_list: Iterable[Sequence[Any]], *, batch_size: int = 1000
    ) -> list[str | None]:
        client = get_client()
        return client.push_bulk(self.bulk_items(args_list, client=client),
                                batch_size=batch_size)


F = TypeVar("F", bound=Callable[..., Any])


class JobFunction(Generic[F]):
    """What ``@roadie.job`` returns: call it directly, or push it like a Job."""

    def __init__(self, fn: F, job_cls: type[Job]) -> None:
        self.fn = fn
        self.job_cls = job_cls
        self.name = job_cls.name
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    @property
    def jobs(self) -> list[Payload]:
        """In fake mode (``roadie.testing.fake()``), the payloads pushed for this job."""
        return self.job_cls.jobs

    def set(self, **options: Any) -> JobSetter:
        return self.job_cls.set(**options)

    def perform_async(self, *args: Any, **kwargs: Never) -> str | None:
        return self.job_cls.perform_async(*args, **kwargs)

    def perform_in(self, interval: float | timedelta, *args: Any, **kwargs: Never
                   ) -> str | None:
        return self.job_cls.perform_in(interval, *args, **kwargs)

    def perform_at(self, when: datetime | float, *args: Any, **kwargs: Never) -> str | None:
        return self.job_cls.perform_at(when, *args, **kwargs)

    def perform_bulk(
        self, args_list: Iterable[Sequence[Any]], *, batch_size: int = 1000
    ) -> list[str | None]:
        return self.job_cls.perform_bulk(args_list, batch_size=batch_size)


@overload
def job(fn: F, /) -> JobFunction[F]: ...


@overload
def job(
    *, name: str | None = None, registry: Registry | None = None, **options: Any
) -> Callable[[F], JobFunction[F]]: ...


def job(
    fn: F | None = None, /, *, name: str | None = None, registry: Registry | None = None,
    **options: Any,
) -> JobFunction[F] | Callable[[F], JobFunction[F]]:
    """Turn a plain function into a job: ``@roadie.job(queue="mail")``."""

    def wrap(f: F) -> JobFunction[F]:
        if inspect.iscoroutinefunction(f):
            async def perform_async_fn(self: Job, *args: Any) -> Any:
                return await f(*args)

            perform: Callable[..., Any] = perform_async_fn
        else:
            def perform_sync_fn(self: Job, *args: Any) -> Any:
                return f(*args)

            perform = perform_sync_fn
        kwds: dict[str, Any] = {"name": name or f"{f.__module__}.{f.__qualname__}", **options}
        if registry is not None:
            kwds["registry"] = registry

        def body(ns: dict[str, Any]) -> None:
            ns["perform"] = perform
            ns["__module__"] = f.__module__
            ns["__qualname__"] = f.__qualname__
            ns["__doc__"] = f.__doc__
            # The signature pushes are checked against (perform itself takes *args).
            ns["_roadie_function"] = f

        job_cls = types.new_class(f.__name__, (Job,), kwds, body)
        return JobFunction(f, job_cls)

    if fn is not None:
        return wrap(fn)
    return wrap
