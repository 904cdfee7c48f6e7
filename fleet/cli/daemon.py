"""``fleet up`` and ``fleet down``: the fleet's daemon without a console.

``up`` starts ``fleet run`` in the background (its own session, output in
``<state_dir>/fleet.log``) and returns once the fleet answers on its socket,
so a script or a boot job can go on to ``fleet status``. Starting twice
starts one fleet: the second finds the first answering, and a race between
two ``up`` is settled by the state directory's lock (see ``fleet.runtime``).

``down`` asks the fleet to shut down (every agent gets its ``stop_grace_s``
between SIGTERM and SIGKILL, then the supervisor releases its watchdog, which
sweeps any process still carrying the fleet's token) and waits until the
supervisor, the watchdog and every agent process it knew of are gone. It
waits on pidfds, not by polling, and opens them before asking, so a recycled
pid can never be mistaken for a fleet process.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import time
from collections.abc import Iterable

import click

from fleet.cli import Ctx, fail, pass_ctx
from fleet.errors import FleetError, FleetNotRunning

#: Seconds ``down`` allows past the longest ``stop_grace_s`` before it SIGKILLs the supervisor.
DOWN_MARGIN_S = 10.0
#: Seconds the watchdog gets to sweep and exit once the supervisor is gone.
WATCHDOG_WAIT_S = 5.0


class ProcessWatch:
    """Processes watched through pidfds: ``wait`` returns when they are gone (or the time is up)."""

    def __init__(self, pids: Iterable[int]) -> None:
        self.fds: dict[int, int] = {}
        for pid in dict.fromkeys(pids):
            with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
                self.fds[pid] = os.pidfd_open(pid)

    def alive(self) -> list[int]:
        p = select.poll()
        for fd in self.fds.values():
            p.register(fd, select.POLLIN)
        exited = {fd for fd, _ in p.poll(0)}
        return [pid for pid, fd in self.fds.items() if fd not in exited]

    def wait(self, pids: Iterable[int], timeout: float) -> list[int]:
        """Block until every one of ``pids`` has exited; return those still alive at ``timeout``."""
        deadline = time.monotonic() + timeout
        waiting = {self.fds[p]: p for p in pids if p in self.fds}
        p = select.poll()
        for fd in waiting:
            p.register(fd, select.POLLIN)
        while waiting:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            for fd, _ in p.poll(left * 1000):
                p.unregister(fd)
                waiting.pop(fd, None)
        return sorted(waiting.values())

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()


@click.command()
@click.option("--timeout", default=60.0, show_default=True, help="Seconds to wait for the fleet to answer.")
@pass_ctx
def up(ctx: Ctx, timeout: float) -> None:
    """Start the fleet in the background; return once it answers.

    No console is opened (`fleet` attaches one). A second `fleet up` says the
    fleet already runs: one fleet runs per directory.
    """
    from fleet.cli.launch import start_background_fleet
    from fleet.control.client import socket_answers

    sock = ctx.socket()
    if socket_answers(sock):
        _say_running(ctx, "already running")
        return
    try:
        proc = start_background_fleet(ctx.fleet_dir, ctx.state_dir(), started_by="up")
    except FleetError as exc:  # e.g. a state directory that cannot be written
        fail(str(exc))
        return
    log = ctx.state_dir() / "fleet.log"
    deadline = time.monotonic() + timeout
    # No event tells a socket has started listening: try it every 50 ms until it answers.
    while not socket_answers(sock):
        if proc.poll() is not None:
            if socket_answers(sock):  # another `fleet up` won the race: one fleet runs
                break
            from fleet.cli.launch import _log_tail

            fail(f"the fleet exited with code {proc.returncode} while starting:\n{_log_tail(log)}")
        if time.monotonic() > deadline:
            fail(f"the fleet did not answer within {timeout:g} s (see {log})")
        time.sleep(0.05)
    _say_running(ctx, "already running", deadline, started=proc.pid)


def _say_running(ctx: Ctx, what: str, deadline: float | None = None, started: int | None = None) -> None:
    """Print one line on the running fleet, once it has started its agents (by ``deadline``).

    ``started``: the pid this command started; when it is the fleet's, the fleet is "up",
    else another ``fleet up`` won the race and this one's child has stepped back.
    """
    from fleet.cli import run_client
    from fleet.humanize import duration

    st = run_client(ctx, lambda c: c.call("status"))
    while not (st.get("daemon") or {}).get("ready", True) and deadline and time.monotonic() < deadline:
        time.sleep(0.05)  # the socket answers before the agents are spawned: a few ms more
        st = run_client(ctx, lambda c: c.call("status"))
    d = st.get("daemon") or {}
    if started is not None and d.get("pid") == started:
        what = "up"
    n = len(st.get("agents", []))
    click.echo(
        f"fleet {st['fleet']!r} {what}: {n} agent{'s' if n != 1 else ''}, pid {d.get('pid', st.get('pid'))}, "
        f"up {duration(d.get('uptime_s', st.get('uptime_s')))}; `fleet` opens the console, `fleet down` stops it"
    )


@click.command()
@click.option("--timeout", default=None, type=float,
              help="Seconds to wait before SIGKILL of the supervisor [default: longest stop_grace_s + 10].")
@pass_ctx
def down(ctx: Ctx, timeout: float | None) -> None:
    """Stop every agent, then the supervisor and its watchdog.

    Each agent gets SIGTERM, then SIGKILL after its stop_grace_s. Prints one
    line and exits 0 once nothing of the fleet is left (also when none runs).
    """
    from fleet.control.blocking import BlockingClient

    t0 = time.monotonic()
    try:
        client = BlockingClient(ctx.socket(), origin="cli", timeout=30)
    except FleetNotRunning:
        click.echo(f"no fleet is running in {ctx.fleet_dir}")
        return
    with client:
        try:
            st = client.call("status")
        except FleetNotRunning:  # it was already on its way out
            click.echo(f"no fleet is running in {ctx.fleet_dir}")
            return
        except FleetError as exc:
            fail(str(exc))
            return
        d = st.get("daemon") or {"pid": st.get("pid")}
        sup_pid = int(d["pid"])
        wd_pid = d.get("watchdog_pid")
        agents = [int(a["pid"]) for a in st.get("agents", []) if a.get("pid")]
        watch = ProcessWatch([sup_pid, *([int(wd_pid)] if wd_pid else []), *agents])
        # If the reply never comes (a supervisor whose loop hangs), the wait below
        # decides: SIGKILL after the grace, and the watchdog kills the agents.
        with contextlib.suppress(FleetError):
            client.call("shutdown")
    try:
        grace = float(d.get("stop_grace_s") or 0.0)
        left = watch.wait([sup_pid], timeout if timeout is not None else grace + DOWN_MARGIN_S)
        killed = ""
        if left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(sup_pid, signal.SIGKILL)  # its watchdog then kills every agent
            watch.wait([sup_pid], WATCHDOG_WAIT_S)
            killed = " (the supervisor did not stop in time and was killed)"
        watch.wait(list(watch.fds), WATCHDOG_WAIT_S)
        still = watch.alive()
    finally:
        watch.close()
    n = len(st.get("agents", []))
    elapsed = time.monotonic() - t0
    if still:
        fail(f"fleet {st['fleet']!r} did not stop: processes {', '.join(map(str, still))} still run{killed}")
    click.echo(f"fleet {st['fleet']!r} stopped: {n} agent{'s' if n != 1 else ''}, the supervisor and its "
               f"watchdog in {elapsed:.1f} s{killed}")
    sys.exit(0)


def describe_daemon(st: dict) -> str:
    """One line on the process running the fleet: pid, uptime, how it was started, where its state is."""
    from fleet.humanize import duration

    d = st.get("daemon")
    if not d:
        return f"daemon pid {st.get('pid')}, up {duration(st.get('uptime_s'))}"
    how = {"up": "`fleet up`", "console": "`fleet` (a console)", "run": "`fleet run` (foreground)"}.get(
        d.get("started_by"), d.get("started_by") or "?")
    log = f", log {d['log']}" if d.get("log") else ""
    return (f"daemon pid {d['pid']}, up {duration(d.get('uptime_s'))}, started by {how}, "
            f"state {d.get('state_dir')}{log}")


def describe_clients(st: dict) -> str:
    """One line on the consoles (and other streaming clients) attached to the fleet."""
    clients = st.get("clients")
    if clients is None:
        return "consoles: unknown"
    consoles = [c for c in clients if c.get("kind") == "console"]
    others = [c for c in clients if c.get("kind") != "console"]

    def who(c: dict) -> str:
        since = time.strftime("%H:%M", time.localtime(c.get("since") or 0))
        where = f" on {c['tty']}" if c.get("tty") else ""
        return f"pid {c.get('pid') or '?'}{where} since {since}"

    line = (f"consoles: {len(consoles)} attached ({'; '.join(who(c) for c in consoles)})" if consoles
            else "consoles: none attached (`fleet` attaches one)")
    if others:
        kinds: dict[str, int] = {}
        for c in others:
            kinds[c.get("kind") or "?"] = kinds.get(c.get("kind") or "?", 0) + 1
        line += "; other clients: " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    return line
