"""Clients of the control API: over the socket, or in the same process.

``SocketClient`` is what the CLI and an attached console use; ``LocalClient``
wraps ``Operations`` directly (tests, or a console embedding a supervisor).
Both satisfy ``fleet.control.api.FleetClient``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fleet.errors import FleetError, FleetNotRunning, error_from_wire
from fleet.jsonlines import LineBuffer, dumps

if TYPE_CHECKING:
    from fleet.control.ops import Operations
    from fleet.supervisor.core import Supervisor

MAX_REPLY = 256 * 1024 * 1024


def socket_answers(path: Path, timeout: float = 1.0) -> bool:
    """Whether a fleet listens on ``path`` (a blocking probe, for CLI start-up decisions)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        s.close()


class SocketClient:
    """A connection to a fleet's control socket."""

    def __init__(self, path: Path, origin: str = "api") -> None:
        self.path = path
        self.origin = origin
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._events: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._read_task: asyncio.Task[None] | None = None
        self.closed = False

    @classmethod
    async def connect(cls, path: Path, origin: str = "api", timeout: float = 2.0) -> SocketClient:
        self = cls(path, origin)
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_unix_connection(str(path), limit=MAX_REPLY), timeout
            )
        except (OSError, TimeoutError) as exc:
            raise FleetNotRunning(f"no fleet is running (nothing answers on {path})") from exc
        self._read_task = asyncio.ensure_future(self._read_loop())
        return self

    async def _read_loop(self) -> None:
        assert self._reader is not None
        buf = LineBuffer(MAX_REPLY)
        try:
            while True:
                data = await self._reader.read(1 << 20)
                if not data:
                    break
                lines, _ = buf.feed(data)
                for raw in lines:
                    try:
                        msg = json.loads(raw)
                    except ValueError:
                        continue
                    if "event" in msg:
                        self._events.put_nowait(msg)
                        continue
                    if msg.get("id") is None and (msg.get("error") or {}).get("code") == "too_many_connections":
                        refused = error_from_wire(msg["error"])
                        for pending in self._pending.values():
                            if not pending.done():
                                pending.set_exception(refused)
                        self._pending.clear()
                        continue
                    fut = self._pending.pop(msg.get("id"), None)
                    if fut is None or fut.done():
                        continue
                    if msg.get("ok"):
                        fut.set_result(msg.get("result"))
                    else:
                        fut.set_exception(error_from_wire(msg.get("error") or {}))
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self.closed = True
            err = FleetNotRunning("the fleet closed the connection")
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(err)
            self._pending.clear()
            self._events.put_nowait(None)

    async def call(self, op: str, **args: Any) -> Any:
        if self.closed or self._writer is None:
            raise FleetNotRunning("not connected to a fleet")
        rid = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        self._writer.write(dumps({"id": rid, "op": op, "args": args, "origin": self.origin}))
        return await fut

    async def subscribe(
        self, kinds: list[str] | None = None, *, logs_max_rate: float | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Pushed events of ``kinds`` (all when None). ``logs_max_rate``: bytes of log text per
        second this client wants at most (the fleet caps it anyway); past it lines are
        skipped and counted in ``logs_skipped`` pushes."""
        args: dict[str, Any] = {"kinds": kinds}
        if logs_max_rate is not None:
            args["logs_max_rate"] = logs_max_rate
        await self.call("subscribe", **args)
        async for msg in self.events():
            yield msg

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        """Pushed events of a subscription already made with ``call("subscribe")``."""
        while True:
            msg = await self._events.get()
            if msg is None:
                return
            yield msg

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
        if self._read_task is not None:
            self._read_task.cancel()
            with contextlib.suppress(BaseException):
                await self._read_task
        self.closed = True


class LocalClient:
    """The control API in-process: same calls, no socket."""

    def __init__(self, ops: Operations, origin: str = "console") -> None:
        self.ops = ops
        self.origin = origin
        self._unsubs: list[Any] = []

    @property
    def sup(self) -> Supervisor:
        return self.ops.sup

    async def call(self, op: str, **args: Any) -> Any:
        if op == "subscribe":
            raise FleetError("use subscribe() for pushed events")
        # Round-trip through JSON so callers see exactly what the socket would give.
        result = await self.ops.call(op, args, self.origin)
        return json.loads(json.dumps(result, default=str))

    async def subscribe(
        self, kinds: list[str] | None = None, *, logs_max_rate: float | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """As ``SocketClient.subscribe``; in-process nothing is encoded, so ``logs_max_rate`` is not applied."""
        from fleet.supervisor.core import Subscriber

        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=100_000)

        def send(msg: dict[str, Any]) -> bool:
            try:
                q.put_nowait(msg)
                return True
            except asyncio.QueueFull:
                return False

        unsub = self.sup.subscribe(Subscriber(send, set(kinds) if kinds else None))
        self._unsubs.append(unsub)
        try:
            while True:
                yield await q.get()
        finally:
            unsub()

    async def close(self) -> None:
        for u in self._unsubs:
            u()
        self._unsubs.clear()
