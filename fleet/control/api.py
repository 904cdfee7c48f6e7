"""The control API every client speaks, whichever transport carries it.

Wire format on ``<state_dir>/control.sock`` (JSON lines, UTF-8):

    request   {"id": 7, "op": "pause", "args": {"names": ["watch"]}, "origin": "cli"}
    reply     {"id": 7, "ok": true, "result": {...}}
              {"id": 7, "ok": false, "error": {"code": "unknown_agent", "message": "..."}}
    push      {"event": "state" | "logs" | "alert" | ..., "data": {...}}   (after "subscribe")

``FleetClient`` is the Python face of it. The console depends on this
protocol only, so the same screens run against an embedded fleet
(``LocalClient``) or one started elsewhere (``SocketClient``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

#: Operations the supervisor answers; args are keyword arguments of the method.
OPS = (
    "ping",  # -> {"pid", "fleet", "version"}
    "status",  # -> StatusDict (see Supervisor.status)
    "pause",  # names: list[str] | None, all: bool -> {"agents": [names affected]}
    "resume",
    "restart",
    "stop",
    "start",
    # agent: str|None, n: int=200, before_seq: int|None, grep: str|None, since: float|None -> {"lines": [LogLine]}
    "logs",
    "events",  # n: int=200, kinds: list[str]|None -> {"events": [Event]}
    "subscribe",  # kinds: list[str]|None (None = all), agents: list[str]|None -> pushes
    "policy_show",  # name: str -> {"agent", "policy": {...}, "origins": {"llm.model": "policies/ops.toml", ...}}
    "policy_files",  # -> {"files": [{"path": "policies/ops.toml", "text": "..."}]}
    "policy_check",  # path: str, text: str -> {"errors": [{"path","line","col","message"}]}
    "policy_write",  # path: str, text: str -> {"errors": [...]} (writes atomically when valid)
    "set_override",  # target: str, key: str, value: Any -> {}
    "approvals",  # pending_only: bool=True -> {"approvals": [...]}
    "approve",  # id: int
    "deny",  # id: int, reason: str
    "usage",  # agent: str|None, n: int -> {"calls": [...]} (recent LLM calls)
    "metrics",  # agent: str|None -> time series for sparklines
    "tasks",  # -> {"tasks": [...]}
    "task_add",  # kind, payload, priority
    "shutdown",  # stop the fleet (used by the embedded console's quit)
)


class FleetClient(Protocol):
    """What the console and the CLI need from a fleet."""

    async def call(self, op: str, **args: Any) -> dict[str, Any]:
        """Send one request; return its ``result`` or raise the typed ``FleetError``."""
        ...

    def subscribe(self, kinds: list[str] | None = None) -> AsyncIterator[dict[str, Any]]:
        """Yield pushed events ``{"event": kind, "data": {...}}`` until closed."""
        ...

    async def close(self) -> None: ...
