"""Whether the machine's CPUs are all wanted by others: the indexer's cue to wait.

Why a nice value is not enough: with autogroups (the default on desktop and
server kernels) a nice value only weighs against threads of the same session.
The indexer at nice 19 is the only busy thread of the supervisor's session
after a flood, so next to two CPU-bound agents, each in a session of its own,
it got a third of the machine (measured: 1.77 CPU-s over their 12 s, against
0.95 with indexing off). ``SCHED_IDLE`` has the same limit and starves a
thread holding the database's lock. So the indexer also asks the kernel how
many tasks are runnable (``procs_running`` in ``/proc/stat``) and waits while,
without it, there are at least as many as it has CPUs: it then takes nothing
an agent wanted. On other systems the answer is always "not busy".
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

#: Samples taken (a little apart) before saying "busy": a task runnable for a moment is not load.
SAMPLES = 3
SAMPLE_GAP_S = 0.002


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def procs_running(path: str = "/proc/stat") -> int | None:
    """Tasks runnable on the whole machine now (the caller included), or None if unknown."""
    try:
        with open(path, "rb") as f:
            for line in f:
                if line.startswith(b"procs_running "):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


class CpuBusy:
    """``busy()``: every CPU this process may use is wanted by another runnable task."""

    def __init__(self, cpus: int | None = None, read: Callable[[], int | None] = procs_running) -> None:
        self.cpus = cpus or _cpus()
        self._read = read

    def busy(self) -> bool:
        """True when, in each of ``SAMPLES`` looks, the others runnable fill every CPU."""
        for i in range(SAMPLES):
            running = self._read()
            if running is None or running - 1 < self.cpus:  # the caller is running: it is one of them
                return False
            if i + 1 < SAMPLES:
                time.sleep(SAMPLE_GAP_S)  # a gap between looks, not synchronisation
        return True
