"""A hard deadline on the supervisor's way out: agents killed and the process gone, whatever hangs.

The watchdog acts only once the supervisor's process has exited. A
supervisor that meets an unexpected exception can instead hang on its way
out — asyncio's cleanup awaiting a task or joining an executor thread (the
interpreter joins those at exit too), a stop that never returns — and then
its agents run on with no one to stop them. Once shutdown begins, a daemon
thread waits the agents' grace plus a margin; if the process is still here,
it SIGKILLs every agent and leaves with ``os._exit``.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable

#: Seconds past the agents' stop grace for the store's flush and the sockets' close.
EXIT_MARGIN_S = 10.0
#: Exit status when the deadline had to end the process.
EXIT_CODE = 70


class ExitDeadline:
    """Armed once; fires once: ``last_resort()`` then ``os._exit(EXIT_CODE)``."""

    def __init__(self, last_resort: Callable[[], None]) -> None:
        self._last_resort = last_resort
        self._timer: threading.Timer | None = None

    def arm(self, seconds: float) -> None:
        """Start the countdown (idempotent: the first deadline stands)."""
        if self._timer is not None:
            return
        self._timer = threading.Timer(seconds, self._fire, args=(seconds,))
        self._timer.name = "fleet-exit-deadline"
        self._timer.daemon = True
        self._timer.start()

    def _fire(self, seconds: float) -> None:
        try:
            print(f"fleet: still not stopped {seconds:.0f}s after shutdown began: killing the agents and exiting",
                  file=sys.stderr, flush=True)
        except Exception:  # stderr may be gone; the exit must still happen
            pass
        try:
            self._last_resort()
        finally:
            os._exit(EXIT_CODE)
