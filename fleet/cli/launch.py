"""``fleet`` / ``fleet console``: attach to this directory's fleet, or start it and attach.

The fleet is a daemon and the console one of its clients, as with tmux. It
runs in its own process and its own session, so neither a Ctrl-C in the
console's terminal nor the hang-up of a closed terminal reaches the agents: a
log flood is read by a different core than the one drawing the screen, a
console that crashes or loses its terminal only detaches, and ``fleet`` in
any terminal attaches again. ``q`` asks whether to detach or stop the fleet.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

from fleet.cli import EXIT_NOT_RUNNING, Ctx, fail
from fleet.control.client import SocketClient, socket_answers
from fleet.control.lazy import LazyClient
from fleet.errors import FleetError


def start_background_fleet(fleet_dir: Path, state_dir: Path, started_by: str = "console") -> subprocess.Popen[bytes]:
    """Start ``fleet run`` detached from this terminal; its output goes to ``fleet.log``.

    ``started_by`` (``console`` or ``up``) is what ``fleet status`` reports.
    """
    from fleet.paths import ensure_private_dir

    try:
        ensure_private_dir(state_dir)
        log = open(state_dir / "fleet.log", "ab")  # noqa: SIM115 - handed to the child
    except OSError as exc:  # a read-only mount...: one line saying what to do, not a traceback
        from fleet.store.damage import StoreUnavailable, explain_unwritable

        raise StoreUnavailable(explain_unwritable(state_dir / "fleet.db", exc)) from exc
    how = "`fleet up`" if started_by == "up" else "the console"
    log.write(f"\n--- fleet started by {how} at {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
    log.flush()
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "fleet.cli", "-C", str(fleet_dir), "run", "-q", "--started-by", started_by],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            close_fds=True,
        )
    finally:
        log.close()


async def wait_for_socket(path: Path, proc: subprocess.Popen[bytes] | None, log: Path,
                          timeout: float = 30.0) -> SocketClient:
    """Connect once the fleet listens; explain what went wrong if it died instead."""
    deadline = time.monotonic() + timeout
    while True:
        if socket_answers(path):
            return await SocketClient.connect(path, origin="console")
        if proc is not None and proc.poll() is not None:
            tail = await asyncio.to_thread(_log_tail, log)
            raise FleetError(f"the fleet exited with code {proc.returncode} while starting:\n{tail}")
        if time.monotonic() > deadline:
            raise FleetError(f"the fleet did not open its control socket within {timeout:g}s (see {log})")
        await asyncio.sleep(0.05)


def _log_tail(log: Path, n: int = 6) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").strip().splitlines()[-n:])
    except OSError:
        return ""


def open_console(ctx: Ctx, attach_only: bool = False) -> int:
    fleet_dir, is_demo = ctx.resolve()
    sock = ctx.socket()
    running = socket_answers(sock)
    if not running and attach_only:
        fail(f"no fleet is running in {fleet_dir}", EXIT_NOT_RUNNING)
    # Import the UI before starting the fleet: on a 2-core machine the fleet's own
    # start-up (policy load, agents, litellm in a thread) would otherwise compete
    # with these imports and push the first paint past half a second.
    import console.app  # noqa: F401
    from console import run as run_console

    proc = None if running else start_background_fleet(fleet_dir, ctx.state_dir())
    log = ctx.state_dir() / "fleet.log"
    client = LazyClient(lambda: wait_for_socket(sock, proc, log))

    name = fleet_dir.name if not is_demo else "demo"
    try:
        run_console(client, embedded=proc is not None, fleet_name=name)
    finally:
        if proc is not None and proc.poll() is None and os.environ.get("FLEET_CONSOLE_DEBUG"):
            print(f"fleet still running in the background (pid {proc.pid})", file=sys.stderr)
    return 0
