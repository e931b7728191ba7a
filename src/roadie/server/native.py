"""The process's calls into the interpreter and the OS through ctypes, in one place
(the only module outside ``roadie.redis`` that uses ctypes)."""

from __future__ import annotations

import contextlib
import ctypes
import signal
import sys
import threading

from roadie.errors import Shutdown

#: prctl(2) option: the signal this process gets when its parent dies.
PR_SET_PDEATHSIG = 1


def interrupt(thread: threading.Thread) -> bool:
    """Raise ``Shutdown`` in ``thread`` at its next Python instruction."""
    if thread.ident is None or not thread.is_alive():
        return False
    done = ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread.ident), ctypes.py_object(Shutdown)
    )
    return bool(done == 1)


def term_when_parent_dies() -> bool:
    """Ask Linux to send this process TERM when its parent dies, even by ``kill -9``
    (prctl ``PR_SET_PDEATHSIG``); False where that is not available."""
    if not sys.platform.startswith("linux"):
        return False
    with contextlib.suppress(OSError, AttributeError):
        # The running program's own symbols, libc's prctl among them.
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) == 0)
    return False
