"""Process attributes that keep agents out of the supervisor: prctl, through ctypes.

Agents run as the same user as the supervisor, and the same user may read
``/proc/<pid>/environ`` and ``/proc/<pid>/mem`` of any of its processes that
are *dumpable* (the default) — the provider keys the gateway holds included.
``PR_SET_DUMPABLE 0`` makes those files root's and refuses ptrace to the same
user; it is set before the gateway reads any key. (Root, or a process with
``CAP_SYS_PTRACE``, still reads them: nothing keeps keys from root.)

``PR_SET_CHILD_SUBREAPER`` makes the supervisor the parent of every orphan
among its descendants, where there is no cgroup to hold an agent's processes:
a grandchild that called ``setsid`` and lost its parent stays in the
supervisor's process tree, where ``fleet stop`` finds it.

Linux only; elsewhere these are no-ops that report False.
"""

from __future__ import annotations

import ctypes
import os
import sys

PR_SET_PDEATHSIG = 1
PR_GET_DUMPABLE = 3
PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37

_libc: ctypes.CDLL | None = None


def _c() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        # The symbols this process already has (libc's among them): no library search, whose
        # ctypes.util would cost the small watchdog subprocess, shutil, tempfile and an ldconfig run.
        lib = ctypes.CDLL(None, use_errno=True)
        if not hasattr(lib, "prctl"):
            from ctypes.util import find_library

            lib = ctypes.CDLL(find_library("c") or "libc.so.6", use_errno=True)
        _libc = lib
    return _libc


def _prctl(option: int, arg: int | ctypes._Pointer[ctypes.c_int] = 0) -> int | None:
    """``prctl(option, arg)``; None where there is no prctl (not Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    value = arg if not isinstance(arg, int) else ctypes.c_ulong(arg)
    result = int(_c().prctl(option, value, 0, 0, 0))
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl({option}): {os.strerror(err)}")
    return result


def make_undumpable() -> bool:
    """Make this process's /proc files and memory unreadable to other processes of its user."""
    return _prctl(PR_SET_DUMPABLE, 0) is not None


def is_dumpable() -> bool:
    """Whether this process is dumpable (readable through /proc by its own user)."""
    result = _prctl(PR_GET_DUMPABLE)
    return True if result is None else bool(result)


def become_subreaper() -> bool:
    """Adopt the orphans among this process's descendants (they are reparented here, not to init)."""
    return _prctl(PR_SET_CHILD_SUBREAPER, 1) is not None


def stop_subreaping() -> bool:
    """Orphans go to init again (a supervisor that ran inside another program, as in tests)."""
    return _prctl(PR_SET_CHILD_SUBREAPER, 0) is not None


def is_subreaper() -> bool:
    """Whether this process adopts its descendants' orphans."""
    value = ctypes.c_int(0)
    if _prctl(PR_GET_CHILD_SUBREAPER, ctypes.pointer(value)) is None:
        return False
    return bool(value.value)
