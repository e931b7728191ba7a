"""The worker side of ``roadie run -P N``: what a process forked by the supervisor
(``swarm.py``) runs. It is a normal roadie process, with its own identity, Redis
connections and heartbeat, that also stops when the supervisor dies.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
import traceback
from typing import NoReturn

from roadie import log as roadie_log
from roadie.config import Config
from roadie.errors import RoadieError
from roadie.server.native import term_when_parent_dies
from roadie.server.pulse.lite import MEMORY_SIGNAL
from roadie.server.swarm.startgate import StartGate

#: Signals the supervisor handles; blocked around ``fork()`` so none is lost (nor
#: kills a worker before its handlers are set). The supervisor stops a worker over
#: ``max_memory_mb`` with ``MEMORY_SIGNAL``: a stop whose unfinished jobs count a crash.
HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGTSTP, signal.SIGTTIN, signal.SIGCHLD,
           MEMORY_SIGNAL)


def worker_main(config: Config, index: int, parent: int, gate: StartGate | None,
                wakeup: tuple[int, int] | None) -> NoReturn:
    """Run worker ``index`` in the forked child; never returns to the supervisor.

    ``gate``: the supervisor's start gate while its first workers are forked (they
    start their jobs together); ``wakeup``: its signal pipe, closed here.
    """
    code = 1
    try:
        if gate is not None:
            gate.worker_side()
        if wakeup is not None:
            signal.set_wakeup_fd(-1)
            for fd in wakeup:
                os.close(fd)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        die_with_parent(parent)
        from roadie import current
        from roadie.client import configure
        from roadie.server.launcher import Launcher

        cfg = config.replace(labels=(*config.labels, f"worker-{index}"))
        # As `roadie run`: jobs that push jobs use this worker's Redis and options,
        # unless the app's modules configured a default client of their own.
        if current.configured() is None:
            configure(cfg)
        launcher = Launcher(cfg)
        if gate is not None:
            launcher.start_gate = gate.wait_for_go
        launcher.install_signal_handlers(memory_signal=True)
        # A signal sent since the fork is delivered now, to the launcher's handler.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, set(HANDLED))
        code = launcher.run()
    except RoadieError as exc:
        print(f"roadie: {exc}", file=sys.stderr)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            roadie_log.flush()
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def die_with_parent(parent: int) -> None:
    """Get TERM (a normal stop) when the supervisor dies, even by ``kill -9``."""
    done = term_when_parent_dies()
    if not done:
        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(1.0)
            os.kill(os.getpid(), signal.SIGTERM)

        threading.Thread(target=watch, name="roadie.parent-watch", daemon=True).start()
    elif os.getppid() != parent:
        # The supervisor died between the fork and prctl: nobody will send the signal.
        os.kill(os.getpid(), signal.SIGTERM)
