"""Kill everything in a cgroup directory tree and remove it: what the orphan watchdog needs.

The watchdog (``python -I -S watchdog.py``) lives as long as its fleet and
must stay small (it is started for every fleet, and its memory is counted
with the supervisor's), so this module imports ``os``, ``errno``, ``signal``
and ``time`` only: no pathlib, no re, no subprocess. Paths are strings (a
``Path`` works too). :mod:`fleet.supervisor.cgroups` uses these same functions
for the supervisor's own clean-up.
"""

from __future__ import annotations

import errno
import os
import signal
import time


def read_text(path: str | os.PathLike[str]) -> str | None:
    """The file's text, or None when it cannot be read (gone, no permission)."""
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def write_text(path: str | os.PathLike[str], value: str) -> bool:
    """Write ``value`` to a (cgroup) file; False when the kernel refused it."""
    try:
        with open(path, "w") as f:
            f.write(value)
        return True
    except OSError:
        return False


def deepest_first(d: str | os.PathLike[str]) -> list[str]:
    """``d``'s sub-directories, every one before its parent, then ``d`` itself."""
    top = os.fspath(d)
    subs = [root for root, _, _ in os.walk(top, topdown=False)]
    if subs and subs[-1] == top:
        return subs
    return [*subs, top]


def kill_tree_dir(d: str | os.PathLike[str]) -> None:
    """SIGKILL every process in cgroup directory ``d`` and below it.

    ``cgroup.kill`` where the kernel has it (v2, atomic); elsewhere the pids
    listed, a few rounds, for processes forked meanwhile.
    """
    for sub in deepest_first(d):
        if write_text(os.path.join(sub, "cgroup.kill"), "1"):
            continue
        for _ in range(5):
            text = read_text(os.path.join(sub, "cgroup.procs")) or ""
            pids = [int(p) for p in text.split()]
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass


def remove_tree(d: str | os.PathLike[str], wait_s: float = 1.0) -> bool:
    """Kill what is in ``d`` and remove it with its sub-directories (deepest first)."""
    kill_tree_dir(d)
    deadline = time.monotonic() + wait_s
    for sub in deepest_first(d):
        while True:
            try:
                os.rmdir(sub)
                break
            except FileNotFoundError:
                break
            except OSError as exc:
                # EBUSY while killed processes are still exiting: a short wait, bounded.
                if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                    return False
                time.sleep(0.01)
    return True
