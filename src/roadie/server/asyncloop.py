"""The event loop thread on which a process's ``async def perform`` jobs run."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any

log = logging.getLogger("roadie")

#: How often a thread waiting for its coroutine looks up (seconds): an exception the
#: launcher raises in it (``Shutdown``, a hard stop) is delivered within this time.
WAIT_SLICE_S = 0.1


async def _guard(coro: Any) -> tuple[bool, Any]:
    # SystemExit or KeyboardInterrupt escaping a task would stop the event loop
    # and hang every async job; carry any exception back to the processor instead.
    try:
        return True, await coro
    except BaseException as exc:
        return False, exc


def new_event_loop(kind: str = "auto") -> asyncio.AbstractEventLoop:
    """An event loop: uvloop's ("uvloop", or "auto" when it is installed) or asyncio's.

    uvloop wakes and switches tasks faster: 2,000 jobs sleeping 10 ms at 10 executors
    took 2.19-2.22 s with it and 2.44 s with asyncio's loop (ideal 2.00 s).
    """
    if kind != "asyncio":
        try:
            import uvloop
        except ImportError:
            if kind == "uvloop":
                raise
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


class Pending:
    """A coroutine started on the loop from another thread, and its outcome."""

    def __init__(self, loop: asyncio.AbstractEventLoop, coro: Any,
                 wake: threading.Lock | None) -> None:
        self.loop = loop
        self.done = False
        if wake is None:
            wake = threading.Lock()
            wake.acquire()
        self.wake = wake
        self._outcome: tuple[bool, Any] = (False, None)
        self._task: asyncio.Task[tuple[bool, Any]] | None = None

        def finished(task: asyncio.Task[tuple[bool, Any]]) -> None:
            self._outcome = ((False, asyncio.CancelledError()) if task.cancelled()
                             else task.result())
            self.done = True
            wake_up(wake)

        def start() -> None:
            self._task = loop.create_task(_guard(coro))
            self._task.add_done_callback(finished)

        loop.call_soon_threadsafe(start)

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for ``wake`` to be released (the coroutine ended,
        or it woke this thread on purpose: see ``done``); False if it timed out."""
        return self.wake.acquire(timeout=timeout)

    def result(self) -> Any:
        ok, value = self._outcome
        if not ok:
            raise value
        return value

    def cancel(self) -> None:
        def cancel() -> None:
            if self._task is not None:  # start() ran first: the loop keeps their order
                self._task.cancel()

        self.loop.call_soon_threadsafe(cancel)


def wake_up(lock: threading.Lock) -> None:
    """Release ``lock`` unless it is released already (only the loop's thread calls
    this, so two calls never race)."""
    if lock.locked():
        lock.release()


class LoopThread:
    """One event loop thread on which every ``async def perform`` runs."""

    def __init__(self, kind: str = "auto",
                 connect: Callable[[], Coroutine[Any, Any, Any]] | None = None) -> None:
        self.loop = new_event_loop(kind)
        #: Makes the loop's own ``redis.asyncio`` client (``client``), if given.
        self._connect = connect
        self._client: asyncio.Task[Any] | None = None
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="roadie.asyncio", daemon=True
        )
        self.thread.start()

    def run(self, coro: Any) -> Any:
        """Run ``coro`` on the loop; the calling thread waits for its outcome.

        One wake-up each way through a plain lock: lighter than
        ``run_coroutine_threadsafe``'s future, condition and chained callbacks. An
        exception raised in the waiting thread (the launcher's ``Shutdown`` at a hard
        stop) cancels the coroutine, so a job pushed back to its queue does not
        finish here too.
        """
        pending = self.start(coro)
        try:
            while not pending.wait(WAIT_SLICE_S):
                pass
        except BaseException:
            pending.cancel()
            raise
        return pending.result()

    def start(self, coro: Any, wake: threading.Lock | None = None) -> Pending:
        """Start ``coro`` on the loop and return at once. ``wake`` (a held lock) is
        released when it ends, and may be released by the coroutine too (see
        ``Pending.wait``)."""
        return Pending(self.loop, coro, wake)

    async def client(self) -> Any:
        """The loop's own Redis client (``redis.asyncio``), made on first use, with
        which processors fetch while their async jobs run (no thread wakes up for
        it); None when this loop thread has none or it could not be made."""
        if self._connect is None:
            return None
        if self._client is None:
            self._client = self.loop.create_task(self._connect())
        try:
            return await asyncio.shield(self._client)
        except Exception:
            log.warning("the event loop's Redis client could not be made; processors "
                        "fetch from their threads", exc_info=True)
            self._connect = None
            return None

    async def connected(self) -> None:
        """Make the loop's client and open its connection; a failure is only logged
        (the first fetch tries again)."""
        client = await self.client()
        if client is not None:
            try:
                await client.ping()
            except Exception as exc:
                log.debug("could not connect the event loop's Redis client yet: %s", exc)

    def warm(self, timeout: float = 5.0) -> None:
        """``connected``, from another thread, waiting up to ``timeout`` s."""
        if self._connect is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self.connected(), self.loop).result(timeout)
        except Exception as exc:
            log.debug("could not connect the event loop's Redis client yet: %s", exc)

    def stop(self) -> None:
        """Cancel the coroutines still running, close the loop's Redis client, then
        stop the loop (after the loop's next pass, which delivers the cancellations)."""

        async def close(client: Any) -> None:
            try:
                await asyncio.wait_for(client.aclose(), 1.0)
            except Exception:
                log.debug("closing the event loop's Redis client failed", exc_info=True)
            finally:
                self.loop.stop()

        def shutdown() -> None:
            for task in asyncio.all_tasks(self.loop):
                task.cancel()
            made = self._client
            if made is not None and made.done() and not made.cancelled() \
                    and made.exception() is None:
                self.loop.create_task(close(made.result()))
            else:
                self.loop.call_soon(self.loop.stop)

        self.loop.call_soon_threadsafe(shutdown)
