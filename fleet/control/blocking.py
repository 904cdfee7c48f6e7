"""A blocking control-socket client for one-shot commands (``fleet pause``, ``fleet status``).

The CLI's answer time is mostly interpreter start-up and imports: importing
``asyncio`` alone cost ~80 ms of the ~200 ms a ``fleet pause`` took. A plain
socket, JSON lines and the same typed errors do the job without it; streaming
commands (``logs -f``, the console) keep the asyncio ``SocketClient``.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import socket
from pathlib import Path
from typing import Any

from fleet.errors import FleetNotRunning, error_from_wire
from fleet.jsonlines import LineBuffer, dumps

MAX_REPLY = 256 * 1024 * 1024


class BlockingClient:
    """Request/reply over the control socket; pushed events, if any, are skipped."""

    def __init__(self, path: Path, origin: str = "cli", timeout: float | None = None) -> None:
        self.path = path
        self.origin = origin
        self._ids = itertools.count(1)
        self._buf = LineBuffer(MAX_REPLY)
        self._lines: list[bytes] = []
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        try:
            self._sock.connect(str(path))
        except OSError as exc:
            self._sock.close()
            raise FleetNotRunning(f"no fleet is running (nothing answers on {path})") from exc

    def call(self, op: str, **args: Any) -> Any:
        rid = next(self._ids)
        try:
            try:
                self._sock.sendall(dumps({"id": rid, "op": op, "args": args, "origin": self.origin}))
            except OSError:
                # Closed before the request went out: refused at the connection cap? It said so first.
                msg: dict[str, Any] = {}
                with contextlib.suppress(OSError, FleetNotRunning):
                    self._sock.settimeout(0.5)
                    msg = self._next_message()
                if msg.get("id") is None and msg.get("ok") is False:
                    raise error_from_wire(msg.get("error") or {}) from None
                raise
            while True:
                msg = self._next_message()
                if msg.get("id") is None and msg.get("ok") is False:  # refused (at the connection cap)
                    raise error_from_wire(msg.get("error") or {})
                if msg.get("id") != rid or "event" in msg:
                    continue
                if msg.get("ok"):
                    return msg.get("result")
                raise error_from_wire(msg.get("error") or {})
        except OSError as exc:
            raise FleetNotRunning(f"the fleet closed the connection ({exc})") from exc

    def _next_message(self) -> dict[str, Any]:
        while not self._lines:
            data = self._sock.recv(1 << 20)
            if not data:
                raise FleetNotRunning("the fleet closed the connection")
            self._lines, _ = self._buf.feed(data)
        raw = self._lines.pop(0)
        try:
            msg = json.loads(raw)
        except ValueError:
            return {}
        return msg if isinstance(msg, dict) else {}

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> BlockingClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
