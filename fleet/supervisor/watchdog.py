"""The orphan reaper: a tiny process that outlives a killed supervisor.

A supervisor killed with SIGKILL cannot clean up, and PR_SET_PDEATHSIG only
reaches direct children. So the supervisor starts this watchdog in its own
session with a pipe on stdin and tells it, line by line, which process groups
it owns (``+PGID`` / ``-PGID``). When stdin reaches EOF (the supervisor exited,
however it exited) the watchdog SIGKILLs those groups and then every process
that still carries this fleet's token in its environment (children that
escaped their group with setsid included), and exits. Stdlib only.
"""

from __future__ import annotations

import os
import signal
import sys

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


def reap(pgids: set[int], token: str) -> int:
    """Kill everything that belongs to the fleet; return how many processes were hit."""
    for pgid in pgids:
        _kill_group(pgid)
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
    return hit


def main() -> int:
    token = sys.argv[1] if len(sys.argv) > 1 else ""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    pgids: set[int] = set()
    stdin = sys.stdin.buffer
    while True:
        line = stdin.readline()
        if not line:
            break
        line = line.strip()
        if line == b"exit":  # clean shutdown: the supervisor already stopped everything
            pgids.clear()
            continue
        try:
            sign, pgid = line[:1], int(line[1:])
        except ValueError:
            continue
        if sign == b"+":
            pgids.add(pgid)
        elif sign == b"-":
            pgids.discard(pgid)
    reap(pgids, token)
    return 0


if __name__ == "__main__":
    sys.exit(main())
