"""The control socket: ``<state_dir>/control.sock``, JSON lines, the operator's alone.

The directory is 0700 and the socket 0600, created under a tight umask so
there is no window in which another user could connect. Each connection may
send requests (answered in any order, matched by ``id``) and may subscribe to
pushed events. A slow subscriber never slows the fleet: when its transport
buffer is full, pushes to it are dropped and counted, and it is told how many
it missed (the store still has everything).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from pathlib import Path
from typing import Any

from fleet.control.client import socket_answers
from fleet.control.ops import Operations
from fleet.errors import FleetError, ProtocolError, error_to_wire
from fleet.jsonlines import LineBuffer, dumps
from fleet.paths import ensure_private_dir
from fleet.supervisor.core import Subscriber, Supervisor

MAX_REQUEST = 32 * 1024 * 1024
#: Bytes a subscriber may have queued before pushes to it are dropped.
SUBSCRIBER_HIGH_WATER = 8 * 1024 * 1024


class AlreadyRunning(FleetError):
    code = "already_running"


def socket_path(state_dir: Path) -> Path:
    return state_dir / "control.sock"


class _Connection(asyncio.Protocol):
    def __init__(self, server: ControlServer) -> None:
        self.server = server
        self.buf = LineBuffer(MAX_REQUEST)
        self.transport: asyncio.Transport | None = None
        self.unsubscribe: Any = None
        self.sub: Subscriber | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        lines, dropped = self.buf.feed(data)
        if dropped:
            self._write({"id": None, "ok": False, "error": error_to_wire(
                ProtocolError(f"request over {MAX_REQUEST} bytes discarded"))})
        for raw in lines:
            if not raw.strip():
                continue
            try:
                msg = json.loads(raw)
                if not isinstance(msg, dict):
                    raise ValueError("not an object")
            except ValueError as exc:
                self._write({"id": None, "ok": False,
                             "error": error_to_wire(ProtocolError(f"invalid JSON request: {exc}"))})
                continue
            task = asyncio.ensure_future(self._handle(msg))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _handle(self, msg: dict[str, Any]) -> None:
        rid = msg.get("id")
        op = msg.get("op")
        args = msg.get("args") or {}
        origin = str(msg.get("origin") or "api")[:32]
        try:
            if not isinstance(op, str):
                raise ProtocolError("request needs an 'op' string")
            if not isinstance(args, dict):
                raise ProtocolError("'args' must be an object")
            if op == "subscribe":
                result = self._subscribe(**args)
            else:
                result = await self.server.ops.call(op, args, origin)
        except asyncio.CancelledError:
            raise
        except FleetError as exc:
            self._write({"id": rid, "ok": False, "error": error_to_wire(exc)})
        except Exception as exc:  # never let one request take the supervisor down
            self._write({"id": rid, "ok": False, "error": {"code": "internal", "message": repr(exc)}})
        else:
            self._write({"id": rid, "ok": True, "result": result})

    def _subscribe(self, kinds: list[str] | None = None, agents: list[str] | None = None) -> dict[str, Any]:
        if self.unsubscribe is not None:
            self.unsubscribe()
        self.sub = Subscriber(self._push, set(kinds) if kinds else None, set(agents) if agents else None)
        self.unsubscribe = self.server.sup.subscribe(self.sub)
        return {"subscribed": sorted(kinds) if kinds else "all"}

    def _push(self, msg: dict[str, Any]) -> bool:
        t = self.transport
        if t is None or t.is_closing():
            return False
        if t.get_write_buffer_size() > SUBSCRIBER_HIGH_WATER:
            return False
        if self.sub is not None and self.sub.dropped:
            missed, self.sub.dropped = self.sub.dropped, 0
            t.write(dumps({"event": "dropped", "data": {"count": missed}}))
        t.write(dumps(msg))
        return True

    def _write(self, msg: dict[str, Any]) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(dumps(msg))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.unsubscribe is not None:
            self.unsubscribe()
        for t in list(self.tasks):
            t.cancel()
        self.server.connections.discard(self)


class ControlServer:
    """Serves one supervisor's operations on its control socket."""

    def __init__(self, sup: Supervisor, ops: Operations, state_dir: Path) -> None:
        self.sup = sup
        self.ops = ops
        self.state_dir = state_dir
        self.path = socket_path(state_dir)
        self.connections: set[_Connection] = set()
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        ensure_private_dir(self.state_dir)
        if self.path.exists() or self.path.is_symlink():
            if socket_answers(self.path):
                raise AlreadyRunning(f"a fleet is already running here (socket {self.path})")
            self.path.unlink()
        old = os.umask(0o177)
        try:
            self._server = await asyncio.get_running_loop().create_unix_server(self._factory, str(self.path))
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)

    def _factory(self) -> _Connection:
        conn = _Connection(self)
        self.connections.add(conn)
        return conn

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for c in list(self.connections):
                if c.transport is not None:
                    c.transport.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
