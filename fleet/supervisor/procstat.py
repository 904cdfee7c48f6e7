"""CPU and memory of agent processes, cheap enough to sample 200 of them every second.

``psutil`` reads two /proc files per process through several layers of Python:
~100 µs each, 21 ms per second for 200 agents — 2 % of a core spent by a fleet
with a console attached and nothing else happening. On Linux one
``/proc/<pid>/stat`` read gives CPU ticks, resident pages and the start time
(which tells a reused pid from the process seen before) for ~11 µs. Elsewhere,
psutil.
"""

from __future__ import annotations

import os
import sys
import time

import psutil

_LINUX = sys.platform.startswith("linux")
_TICKS = os.sysconf("SC_CLK_TCK") if _LINUX else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if _LINUX else 4096


def read_stat(pid: int) -> tuple[int, int, int] | None:
    """(start time, CPU ticks user+system, resident bytes) of ``pid``, or None if it is gone."""
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY)
    except OSError:
        return None
    try:
        data = os.read(fd, 4096)
    except OSError:
        return None
    finally:
        os.close(fd)
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = data[data.rfind(b")") + 2 :].split()
    try:
        return int(fields[19]), int(fields[11]) + int(fields[12]), int(fields[21]) * _PAGE
    except (IndexError, ValueError):
        return None


class ProcSampler:
    """``sample(pid)`` -> (CPU % of one core since the previous sample, RSS bytes), like
    psutil's ``cpu_percent(None)``: the first sample of a process reads 0.0."""

    def __init__(self) -> None:
        self._prev: dict[int, tuple[int, float, float]] = {}  # pid -> (start, monotonic, cpu seconds)
        self._psutil: dict[int, psutil.Process] = {}

    def sample(self, pid: int) -> tuple[float, int] | None:
        if not _LINUX:
            return self._sample_psutil(pid)
        st = read_stat(pid)
        if st is None:
            self._prev.pop(pid, None)
            return None
        start, ticks, rss = st
        now = time.monotonic()
        cpu_s = ticks / _TICKS
        prev = self._prev.get(pid)
        self._prev[pid] = (start, now, cpu_s)
        if prev is None or prev[0] != start or now <= prev[1]:
            return 0.0, rss
        return round(max(0.0, (cpu_s - prev[2]) / (now - prev[1]) * 100), 1), rss

    def _sample_psutil(self, pid: int) -> tuple[float, int] | None:
        proc = self._psutil.get(pid)
        try:
            if proc is None:
                proc = self._psutil[pid] = psutil.Process(pid)
                proc.cpu_percent(None)
            with proc.oneshot():
                return proc.cpu_percent(None), proc.memory_info().rss
        except (psutil.Error, OSError):
            self._psutil.pop(pid, None)
            return None

    def keep(self, pids: set[int]) -> None:
        """Forget every process not in ``pids``."""
        for cache in (self._prev, self._psutil):
            for pid in [p for p in cache if p not in pids]:
                del cache[pid]
