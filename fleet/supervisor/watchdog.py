"""The orphan reaper: a tiny process that outlives a killed supervisor.

A supervisor killed with SIGKILL cannot clean up, and PR_SET_PDEATHSIG only
reaches direct children. So the supervisor starts this watchdog in its own
session with a pipe on stdin and tells it, line by line, which process groups
it owns (``+PGID`` / ``-PGID``), the fleet's cgroup directories (``+cPATH``)
and, without cgroups, each process it found in an agent's tree
(``+pPID:START``). When stdin reaches EOF (the supervisor exited, however it
exited) the watchdog kills everything in those cgroups and removes them,
SIGKILLs those groups and processes (a ``setsid`` child that dropped its
environment included), then every process that still carries this fleet's
token in its environment, and exits. Stdlib only; it is started with a
named environment only, so it holds no provider key.
"""

from __future__ import annotations

import os
import signal
import sys

if __package__ in (None, ""):
    # Started as a file with ``python -I -S`` (the supervisor does, for a lighter process):
    # neither site-packages nor the script's directory is on the path, so put the
    # directory that holds the ``fleet`` package there, for its stdlib-only cgroupkill module.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__)))))

# Keep this process small (it lives as long as its fleet): os, signal and time only
# here and in what it imports; tests/unit/test_watchdog_imports.py holds it to that.
from fleet.supervisor.cgroupkill import kill_tree_dir, remove_tree

TOKEN_VAR = "FLEET_SUPERVISOR_TOKEN"


def _kill_group(pgid: int) -> None:
    for sig in (signal.SIGKILL,):
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def _processes_with_token(token: str) -> list[int]:
    needle = f"{TOKEN_VAR}={token}".encode()
    me = os.getpid()
    found: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        if pid == me:
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read()
        except OSError:
            continue
        if needle in env.split(b"\0"):
            found.append(pid)
    return found


def _start_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
        return int(data[data.rfind(b")") + 2 :].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def reap(
    pgids: set[int], token: str, cgroups: tuple[str, ...] = (), pids: frozenset[tuple[int, int]] = frozenset()
) -> int:
    """Kill everything that belongs to the fleet; return how many processes were hit."""
    if cgroups:
        for d in cgroups:
            kill_tree_dir(d)
    for pgid in pgids:
        _kill_group(pgid)
    for pid, start in pids:  # the tree of an agent (no cgroups): only if still the same process
        if _start_of(pid) == start:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    hit = 0
    if token and os.path.isdir("/proc"):
        for _ in range(3):  # a forking child may spawn while we sweep
            pids = _processes_with_token(token)
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                    hit += 1
                except (ProcessLookupError, PermissionError):
                    pass
    if cgroups:
        for d in cgroups:
            remove_tree(d, wait_s=2.0)
    return hit


def main() -> int:
    from fleet.supervisor.hardening import make_undumpable

    make_undumpable()  # it holds no key, but nothing of it is an agent's to read either
    token = sys.argv[1] if len(sys.argv) > 1 else ""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    pgids: set[int] = set()
    cgroups: dict[str, None] = {}
    pids: set[tuple[int, int]] = set()
    stdin = sys.stdin.buffer
    while True:
        line = stdin.readline()
        if not line:
            break
        line = line.strip()
        if line == b"exit":  # clean shutdown: the supervisor already stopped everything
            pgids.clear()
            pids.clear()
            continue
        if line.startswith(b"+c"):
            cgroups[line[2:].decode(errors="surrogateescape")] = None
            continue
        if line.startswith(b"+p"):
            pid_s, _, start_s = line[2:].partition(b":")
            try:
                pids.add((int(pid_s), int(start_s)))
            except ValueError:
                pass
            if len(pids) > 100_000:  # bounded: forget processes that are gone
                pids = {(p, s) for p, s in pids if _start_of(p) == s}
            continue
        try:
            sign, pgid = line[:1], int(line[1:])
        except ValueError:
            continue
        if sign == b"+":
            pgids.add(pgid)
        elif sign == b"-":
            pgids.discard(pgid)
    reap(pgids, token, tuple(cgroups), frozenset(pids))
    return 0


if __name__ == "__main__":
    sys.exit(main())
