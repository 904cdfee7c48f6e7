"""The control API every client speaks, whichever transport carries it.

Wire format on ``<state_dir>/control.sock`` (JSON lines, UTF-8):

    request   {"id": 7, "op": "pause", "args": {"names": ["watch"]}, "origin": "cli"}
    reply     {"id": 7, "ok": true, "result": {...}}
              {"id": 7, "ok": false, "error": {"code": "unknown_agent", "message": "..."}}
    push      {"event": "state" | "logs" | "alert" | ..., "data": {...}}   (after "subscribe")

The operations, their arguments and results are declared once, in
:mod:`fleet.control.ops` (see :mod:`fleet.control.registry`; the README's
"Control API" table is generated from them); the records are in :mod:`fleet.wire`.
``FleetClient`` is the Python face of it. The console depends on this
protocol only, so the same screens run against an embedded fleet
(``LocalClient``) or one started elsewhere (``SocketClient``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol


class FleetClient(Protocol):
    """What the console and the CLI need from a fleet."""

    async def call(self, op: str, **args: Any) -> dict[str, Any]:
        """Send one request; return its ``result`` or raise the typed ``FleetError``."""
        ...

    def subscribe(
        self, kinds: list[str] | None = None, *, logs_max_rate: float | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Yield pushed events ``{"event": kind, "data": {...}}`` until closed.

        ``logs_max_rate``: at most this many bytes of log text a second (lines past it
        are counted in ``logs_skipped`` pushes, and stay in the store)."""
        ...

    async def close(self) -> None: ...
