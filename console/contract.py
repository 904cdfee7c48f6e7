"""What screens and widgets may ask of the app: the ``ConsoleApp`` protocol.

The app owns the client, the fleet's data (agents, approvals, events, log
rings) and every call to the fleet; screens are views that read that data
and ask the app to act. They reach it through this protocol, never by
importing ``console.app``: the app imports the screens, and nothing imports
back, so there is no circle and a screen can be read (and tested) knowing
only this page of what it may do.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, cast

if TYPE_CHECKING:
    from textual.dom import DOMNode

    from console.logring import LogRings


class ConsoleApp(Protocol):
    """The app as screens see it (``console.app.FleetConsole`` implements it)."""

    hub: LogRings
    #: Every agent the fleet reported, by instance name: the one copy (the table reads it).
    agents: dict[str, dict[str, Any]]
    status: dict[str, Any]
    approvals: dict[int, dict[str, Any]]
    #: Agents' questions (``ctx.ask``) by id.
    questions: dict[int, dict[str, Any]]
    events: deque[dict[str, Any]]
    events_loaded: bool
    fleet_name: str
    clock: Callable[[], float]

    @property
    def pending_approvals(self) -> int: ...

    @property
    def open_questions(self) -> list[dict[str, Any]]: ...

    # -- actions (workers: they report through notifications and pushed events)
    def agent_op(self, op: str, names: list[str] | None) -> None: ...
    def request_op(self, op: str, names: list[str]) -> None: ...
    def open_detail(self, agent: str) -> None: ...
    def prepare_detail(self, agent: str) -> None: ...
    def quick_budget(self, agent: str) -> None: ...
    def quick_model(self, agent: str) -> None: ...
    def ensure_history(self, agent: str) -> None: ...
    def decide(self, approval_id: int, approve: bool, reason: str = "") -> None: ...
    def reload_approvals(self) -> None: ...
    def load_events(self) -> None: ...
    def ask_input(self, agent: str) -> None: ...
    def ask_answer(self, question: dict[str, Any]) -> None: ...
    def offer_attach(self, agent: str) -> None: ...

    # -- reads and writes a screen awaits (the app makes the call) --------------
    async def policy_show(self, agent: str) -> dict[str, Any]: ...
    async def usage(self, agent: str, n: int) -> dict[str, Any]: ...
    async def metrics(self, agent: str) -> dict[str, Any]: ...
    async def policy_files(self) -> dict[str, Any]: ...
    async def policy_check(self, path: str, text: str) -> dict[str, Any]: ...
    async def policy_write(self, path: str, text: str) -> dict[str, Any]: ...


def app_of(node: DOMNode) -> ConsoleApp:
    """The console app of a mounted widget or screen, typed as what screens may use."""
    return cast("ConsoleApp", node.app)
