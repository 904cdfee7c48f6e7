"""Where there is no cgroup: an agent's processes found by the process tree.

The supervisor is made a child subreaper (``hardening.become_subreaper``), so
a process whose parent exits is reparented to the supervisor instead of init
and stays in its tree. A scan of /proc (one ``stat`` read per process, ~15 µs)
attributes every descendant of an agent's main process to that agent, and
keeps the attribution when the process is orphaned and adopted: a ``setsid``
grandchild with an empty environment is still known as the agent's. What is
attributed is killed when the agent stops or exits, and listed to the
watchdog for the supervisor's death.

Limits of this fallback, said plainly: a process that detaches and loses its
parent between two scans (one a second while agents run, and one before
every stop) is adopted without an owner; it is killed with the fleet, not
with its agent. The supervisor reaps only the adopted processes it can
attribute, never another component's child.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Proc:
    pid: int
    ppid: int
    start: int  # clock ticks after boot: tells a reused pid from the process seen before
    ticks: int  # user + system CPU ticks
    rss: int  # resident bytes
    state: str


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def read_proc(pid: int) -> Proc | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2 :].split()
    try:
        return Proc(pid, int(fields[1]), int(fields[19]), int(fields[11]) + int(fields[12]),
                    int(fields[21]) * _PAGE, fields[0].decode())
    except (IndexError, ValueError):
        return None


def scan() -> dict[int, Proc]:
    """Every process visible in /proc."""
    out: dict[int, Proc] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return out
    for entry in entries:
        if entry.isdigit():
            p = read_proc(int(entry))
            if p is not None:
                out[p.pid] = p
    return out


class TreeTracker:
    """Which agent each process belongs to, by ancestry, kept across reparenting."""

    def __init__(self, me: int | None = None) -> None:
        self.me = me if me is not None else os.getpid()
        #: pid -> (agent, start ticks)
        self.owner: dict[int, tuple[str, int]] = {}
        self.procs: dict[int, Proc] = {}

    def update(self, roots: dict[int, str]) -> dict[str, list[Proc]]:
        """Rescan; ``roots`` maps each agent's main pid to its name. Returns agent -> processes."""
        procs = scan()
        self.procs = procs
        children: dict[int, list[int]] = {}
        for p in procs.values():
            children.setdefault(p.ppid, []).append(p.pid)
        owner: dict[int, tuple[str, int]] = {}
        # Known processes that are still the same process keep their owner (adopted orphans).
        for pid, (agent, start) in self.owner.items():
            p = procs.get(pid)
            if p is not None and p.start == start:
                owner[pid] = (agent, start)
        for pid, agent in roots.items():
            p = procs.get(pid)
            if p is not None:
                owner[pid] = (agent, p.start)
        # Everything below an owned process is owned by the same agent.
        stack = list(owner)
        while stack:
            pid = stack.pop()
            agent = owner[pid][0]
            for child in children.get(pid, ()):
                if child not in owner:
                    owner[child] = (agent, procs[child].start)
                    stack.append(child)
        self.owner = owner
        self._reap(procs)
        out: dict[str, list[Proc]] = {}
        for pid, (agent, _) in owner.items():
            out.setdefault(agent, []).append(procs[pid])
        return out

    def _reap(self, procs: dict[int, Proc]) -> None:
        """Reap adopted zombies that belong to an agent (never another component's child)."""
        for pid in list(self.owner):
            p = procs.get(pid)
            if p is not None and p.state == "Z" and p.ppid == self.me:
                with contextlib.suppress(ChildProcessError, OSError):
                    os.waitpid(pid, os.WNOHANG)

    def of(self, agent: str) -> list[tuple[int, int]]:
        """(pid, start) of every process attributed to ``agent``."""
        return [(pid, start) for pid, (a, start) in self.owner.items() if a == agent]

    def alive(self, agent: str) -> list[int]:
        """The agent's processes that still run (not those gone since the last scan)."""
        out = []
        for pid, start in self.of(agent):
            p = read_proc(pid)
            if p is not None and p.start == start and p.state != "Z":
                out.append(pid)
        return out

    def signal(self, agent: str, sig: int, exclude: int | None = None) -> int:
        """Send ``sig`` to the agent's processes that are still the ones seen; returns how many."""
        n = 0
        for pid, start in self.of(agent):
            if pid == exclude:
                continue
            p = read_proc(pid)
            if p is None or p.start != start:
                continue
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
                n += 1
        return n

    def forget(self, agent: str) -> None:
        for pid in [pid for pid, (a, _) in self.owner.items() if a == agent]:
            del self.owner[pid]
