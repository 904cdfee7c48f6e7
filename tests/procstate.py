"""Whether a paused process is stopped, as the kernel sees it: for tests that pause agents.

A SIGSTOP acts when its process next returns to user space; until then it is pending.
A process can stay in the kernel for the whole pause: dash vforks its commands, and a
shell whose vfork child was stopped before its exec sleeps uninterruptibly (state
'disk-sleep') until that child runs again. It runs no code meanwhile either, and stops
the moment it leaves the kernel; asking for state 'stopped' alone is asking for a flake.
"""

from __future__ import annotations

import signal

import psutil


def stop_pending(pid: int) -> bool:
    """SIGSTOP is pending for ``pid``: sent, not yet acted on (Linux ``/proc``)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            fields = dict(line.split(":", 1) for line in fh if ":" in line)
    except OSError:
        return False
    pending = int(fields["SigPnd"], 16) | int(fields["ShdPnd"], 16)
    return bool(pending & (1 << (signal.SIGSTOP - 1)))


def stopped(pid: int) -> bool:
    """``pid`` runs no more: stopped, a zombie, gone, or stopping on its way out of the kernel."""
    try:
        status = psutil.Process(pid).status()
    except psutil.NoSuchProcess:
        return True
    return status in (psutil.STATUS_STOPPED, psutil.STATUS_ZOMBIE) or stop_pending(pid)
