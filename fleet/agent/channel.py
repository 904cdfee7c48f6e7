"""The agent's end of the control channel (fd 3): JSON lines over a socketpair.

Requests carry an ``id`` and resolve a future when the supervisor's reply with
the same id arrives; everything else (pause, resume, policy updates) is handed
to the context. When the channel closes the supervisor is gone, and an agent
without a supervisor must not live on: the runner exits.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

from fleet.errors import GatewayUnavailable, ProtocolError, error_from_wire
from fleet.jsonlines import LineBuffer, dumps


class Channel(asyncio.Protocol):
    """Request/response plus pushed messages on one stream socket."""

    def __init__(self, on_message: Callable[[dict[str, Any]], None], on_lost: Callable[[], None]) -> None:
        self._on_message = on_message
        self._on_lost = on_lost
        self._buf = LineBuffer()
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._streams: dict[int, asyncio.Queue[dict[str, Any] | None]] = {}
        self.transport: asyncio.Transport | None = None
        self.closed = asyncio.Event()

    @classmethod
    async def connect(
        cls, fd: int, on_message: Callable[[dict[str, Any]], None], on_lost: Callable[[], None]
    ) -> Channel:
        sock = socket.socket(fileno=fd)
        loop = asyncio.get_running_loop()
        _, proto = await loop.create_unix_connection(lambda: cls(on_message, on_lost), sock=sock)
        return proto

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        lines, _ = self._buf.feed(data)
        for raw in lines:
            try:
                msg = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(msg, dict):
                continue
            t = msg.get("t")
            if t == "reply":
                self._resolve(msg)
            elif t == "chunk":
                q = self._streams.get(msg.get("id", -1))
                if q is not None:
                    q.put_nowait(msg.get("data"))
            else:
                self._on_message(msg)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed.set()
        err = GatewayUnavailable("control channel closed: the supervisor is gone")
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(err)
        for q in self._streams.values():
            q.put_nowait(None)
        self._pending.clear()
        self._on_lost()

    def _resolve(self, msg: dict[str, Any]) -> None:
        rid = msg.get("id")
        fut = self._pending.pop(rid, None) if isinstance(rid, int) else None
        q = self._streams.pop(rid, None) if isinstance(rid, int) else None
        if q is not None:
            if not msg.get("ok"):
                q.put_nowait({"__error__": msg.get("error") or {}})
            q.put_nowait(None)
        if fut is None or fut.done():
            return
        if msg.get("ok"):
            fut.set_result(msg.get("result"))
        else:
            fut.set_exception(error_from_wire(msg.get("error") or {}))

    # sending
    def send(self, msg: dict[str, Any]) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.write(dumps(msg))

    async def call(self, op: str, **args: Any) -> Any:
        if self.closed.is_set():
            raise GatewayUnavailable("control channel closed: the supervisor is gone")
        rid = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        self.send({"t": "call", "id": rid, "op": op, "args": args})
        try:
            return await fut
        finally:
            self._pending.pop(rid, None)

    async def stream(self, op: str, **args: Any) -> AsyncIterator[dict[str, Any]]:
        if self.closed.is_set():
            raise GatewayUnavailable("control channel closed: the supervisor is gone")
        rid = next(self._ids)
        q: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._streams[rid] = q
        self.send({"t": "call", "id": rid, "op": op, "args": args})
        try:
            while True:
                item = await q.get()
                if item is None:
                    return
                if "__error__" in item:
                    raise error_from_wire(item["__error__"])
                yield item
        finally:
            self._streams.pop(rid, None)


def unexpected(msg: Any) -> ProtocolError:
    return ProtocolError(f"unexpected message on control channel: {msg!r:.200}")
