"""Assemble a running fleet: store, supervisor, gateway, control socket, live reload.

Used by ``fleet run`` (headless, until SIGINT/SIGTERM) and by tests, which
start a whole fleet in-process and talk to it over the real socket. The
order of start-up is chosen so that a second ``fleet run`` in the same
directory fails before touching any agent, and the order of shutdown so that
every line an agent printed is on disk before the process exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import Any

from fleet.control.ops import Operations
from fleet.control.server import ControlServer
from fleet.errors import FleetError
from fleet.paths import ensure_private_dir, state_dir
from fleet.supervisor.core import Supervisor


class FleetRuntime:
    """One fleet, started and stopped as a unit."""

    def __init__(self, fleet_dir: Path, *, state: Path | None = None, gateway: Any = None,
                 watch: bool = True, started_by: str = "api", on_supervisor: Any = None) -> None:
        self.fleet_dir = fleet_dir
        self._state = state
        self._gateway = gateway
        self._watch = watch
        #: How this fleet was started (``run``, ``up``, ``console``, ``api``): shown by ``fleet status``.
        self.started_by = started_by
        #: Called with this runtime once the supervisor exists, before any agent starts.
        self._on_supervisor = on_supervisor
        self._lock_fd: int | None = None
        self.sup: Supervisor | None = None
        self.ops: Operations | None = None
        self.server: ControlServer | None = None
        self.attach_server: Any = None
        self.store: Any = None
        self.watcher: Any = None
        self._watch_task: asyncio.Task[None] | None = None
        #: Log lines the store could not write before the fleet stopped (disk full at shutdown).
        self.unwritten = 0
        self.store_error: str | None = None

    async def start(self, *, spawn: bool = True) -> Supervisor:
        from fleet.control.server import raise_fd_limit
        from fleet.policy import PolicyWatcher, load_book
        from fleet.store import Store
        from fleet.supervisor.hardening import make_undumpable

        make_undumpable()  # before the gateway reads any key (``fleet run`` did it already)
        raise_fd_limit()  # connections are capped from what is left of it beside the agents
        book = load_book(self.fleet_dir)
        sdir = self._state or state_dir(self.fleet_dir, book.fleet.state_dir)
        try:
            ensure_private_dir(sdir)
        except OSError as exc:  # a read-only mount, another user's directory: one line, what to do
            from fleet.store.damage import StoreUnavailable, explain_unwritable

            raise StoreUnavailable(explain_unwritable(sdir / "fleet.db", exc)) from exc
        # Nothing slow between locking the state directory and answering on the control
        # socket: a second fleet started at the same moment finds this one at once (the
        # gateway's HTTP stack, aiohttp, is imported only when its first client connects).
        try:
            self._lock_fd = _lock_state_dir(sdir)
        except OSError as exc:
            from fleet.store.damage import StoreUnavailable, explain_unwritable

            raise StoreUnavailable(explain_unwritable(sdir / "fleet.db", exc)) from exc
        try:
            self.store = await Store.open(sdir / "fleet.db")
        except BaseException:
            self._unlock()
            raise
        if self.store.recovered:  # the old file was damaged: moved aside (kept), a new one started
            print(f"fleet: {self.store.recovered}", file=sys.stderr)
        if book.fleet.log_retention_days or book.fleet.log_retention_mb:
            self.store.set_retention(book.fleet.log_retention_days, book.fleet.log_retention_mb)
        sup = Supervisor(self.fleet_dir, book, store=self.store, gateway=self._gateway, state_dir=sdir)
        sup.started_by = self.started_by
        self.sup = sup
        self.ops = Operations(sup)
        from fleet.alerts import attach as attach_alerts
        from fleet.asking import attach as attach_asking
        from fleet.governance import attach as attach_governance
        from fleet.report import attach as attach_report
        from fleet.tasks import attach as attach_tasks

        await attach_governance(sup, gateway=self._gateway)
        await attach_tasks(sup)
        attach_alerts(sup)
        attach_asking(sup)
        await attach_report(sup)
        # The gateway's HTTP endpoints first: agents are given its URL when they spawn, and a
        # fleet whose fixed port is taken fails before it answers on its control socket.
        http = sup.services.http_gateway
        if http is not None:
            try:
                await http.start()
            except OSError as exc:
                await self.store.close()
                self._unlock()
                raise FleetError(
                    f"the gateway's HTTP port {book.fleet.gateway_port} on 127.0.0.1 is not free "
                    f"([fleet] gateway_port in fleet.toml): {exc.strerror or exc}"
                ) from None
        self.server = ControlServer(sup, self.ops, sdir)
        try:
            await self.server.start()
        except BaseException:
            if http is not None:
                await http.close()
            await self.store.close()
            self._unlock()
            raise
        if self._on_supervisor is not None:
            self._on_supervisor(self)
        from fleet.supervisor.ttyattach import AttachServer

        self.attach_server = AttachServer(sup, sdir)
        await self.attach_server.start()
        await sup.start(spawn=spawn)
        if self.store.recovered:
            sup.publish("store", None, {"ok": True, "error": None, "recovered": True, "message": self.store.recovered})
        if self._watch:
            self.watcher = PolicyWatcher(
                self.fleet_dir, on_change=sup.apply_book, on_error=sup.policy_error, book=book
            )
            self._watch_task = asyncio.ensure_future(self.watcher.run())
        return sup

    async def stop(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
        if self._watch_task is not None:
            self._watch_task.cancel()
            with contextlib.suppress(BaseException):
                await self._watch_task
        if self.sup is not None:
            try:
                await self.sup.shutdown()
            except BaseException:
                self.sup.kill_all_now()
                raise
            gw = self.sup.gateway
            if gw is not None and hasattr(gw, "close"):
                with contextlib.suppress(Exception):
                    await gw.close()
        if self.attach_server is not None:
            await self.attach_server.close()
        http = self.sup.services.http_gateway if self.sup is not None else None
        if http is not None:
            with contextlib.suppress(Exception):
                await http.close()
        if self.server is not None:
            await self.server.close()
        if self.store is not None:
            health = self.store.health() if hasattr(self.store, "health") else {}
            self.unwritten = await self.store.close()
            self.store_error = health.get("error")
        self._unlock()

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    async def __aenter__(self) -> FleetRuntime:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def _lock_state_dir(sdir: Path) -> int:
    """Hold ``<state_dir>/daemon.lock`` for the fleet's life: one fleet per state directory.

    The socket check alone leaves a window (two ``fleet up`` at once both find
    no socket and both start); an exclusive ``flock`` closes it, and the kernel
    releases it however the process ends.
    """
    import fcntl

    from fleet.control.server import AlreadyRunning

    fd = os.open(sdir / "daemon.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise AlreadyRunning(f"a fleet is already running here (state directory {sdir})") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


async def run_until_signal(fleet_dir: Path, *, quiet: bool = False, started_by: str = "run",
                           on_started: Any = None) -> int:
    """``fleet run``: supervise until SIGINT/SIGTERM (or a ``shutdown`` op), then stop cleanly.

    ``on_started(runtime)`` is called once the fleet answers on its socket,
    before its agents start (``fleet run`` hooks its event printer there).
    """
    rt = FleetRuntime(fleet_dir, started_by=started_by, on_supervisor=on_started)
    try:
        sup = await rt.start()
    except BaseException:
        await rt.stop()
        raise
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, sup.request_shutdown)
    if not quiet:
        n = len(sup.instances)
        http = sup.services.http_gateway
        print(
            f"fleet {sup.fleet_name!r}: {n} agent{'s' if n != 1 else ''} running "
            f"(control socket {rt.server.path if rt.server else '?'}"
            f"{f', gateway {http.url}/v1' if http is not None else ''}); Ctrl-C stops them",
            file=sys.stderr,
        )
    from fleet.supervisor.exit_deadline import EXIT_MARGIN_S, ExitDeadline

    deadline = ExitDeadline(sup.kill_all_now)
    try:
        await sup.wait_closed()
    finally:
        # From here on the process leaves within the agents' grace plus a margin, whatever
        # hangs (a stop that never returns, asyncio's cleanup joining a thread).
        deadline.arm(sup.daemon_info()["stop_grace_s"] + EXIT_MARGIN_S)
        if not quiet:
            print("fleet: stopping agents…", file=sys.stderr)
        try:
            await rt.stop()
        except BaseException as exc:
            sup.kill_all_now()  # an exception on the way out: no agent outlives the supervisor
            print(f"fleet: failed while stopping ({exc!r}); agents killed", file=sys.stderr, flush=True)
            raise
    if rt.unwritten:
        why = f" ({rt.store_error})" if rt.store_error else ""
        print(f"fleet: {rt.unwritten} log lines could not be stored{why}", file=sys.stderr)
    return 0
