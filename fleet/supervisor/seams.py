"""The supervisor's collaborators, typed: what it needs from them, and what it offers them.

The supervisor is assembled from parts it does not own: a store, a gateway, a
policy book (given to it), and the services other subsystems attach (approvals,
the task queue, the alert engine). Before, these were ``Any`` and a
``dict[str, Any]`` of extensions, and listeners were named by strings, so a
typo'd hook name or a renamed method failed only when that path ran. Here:

- ``StoreSeam``, ``GatewaySeam``, ``BookSeam``: Protocols of exactly what the
  supervisor and its control operations call. ``fleet.store.Store``,
  ``fleet.gateway.Gateway`` and ``fleet.policy.PolicyBook`` satisfy them
  (tests/unit/test_seams.py checks names and parameters), and so must any
  in-memory stand-in a test injects.
- ``InstanceHost``: the narrow interface through which an agent instance
  reaches its supervisor (``AgentInstance`` is typed with it, not with
  ``Supervisor``).
- ``Services``: the attached services by name and type, None until attached.
- ``Hooks``: the listener lists, one typed field per kind, fired with
  :func:`fire` (a failing listener is reported, never fatal). Every hook is
  fired by the supervisor or a subsystem and tested (tests/unit/test_hooks.py).
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from fleet.records import AgentState, Event, LogChunk, LogLine, UsageRecord

if TYPE_CHECKING:
    from fleet.alerts import AlertEngine
    from fleet.asking import QuestionBook
    from fleet.gateway.approvals import ApprovalManager
    from fleet.gateway.http.server import GatewayServer
    from fleet.policy import Policy, PolicyBook
    from fleet.policy.schema import AgentSpec, FleetSettings
    from fleet.supervisor.instance import AgentInstance
    from fleet.supervisor.loghub import LogHub
    from fleet.supervisor.stdinwatch import StdinWatch
    from fleet.tasks.queue import TaskQueue


class StoreSeam(Protocol):
    """What the supervisor, its log hub and its control operations need from the store."""

    def append_logs(self, chunks: list[LogChunk]) -> None: ...
    def on_pressure(self, cb: Callable[[bool], None]) -> None: ...
    async def flush(self) -> None: ...
    async def max_seqs(self) -> dict[str, int]: ...
    async def tail(
        self, agent: str | None = None, n: int = 200, before_seq: int | None = None, streams: list[str] | None = None,
        since: float | None = None, before: tuple[float, str, int] | None = None,
    ) -> list[LogLine]: ...
    async def search(self, text: str, agent: str | None = None, limit: int = 200,
                     since: float | None = None) -> list[LogLine]: ...
    async def add_event(self, ev: Event) -> int: ...
    async def events(self, n: int = 200, kinds: list[str] | None = None, agent: str | None = None,
                     since: float | None = None) -> list[Event]: ...
    async def add_usage(self, rec: UsageRecord) -> None: ...
    async def usage_totals(self, since: float | None = None) -> dict[str, dict[str, Any]]: ...
    async def recent_usage(self, agent: str | None = None, n: int = 50) -> list[UsageRecord]: ...
    async def approvals(self, pending_only: bool = True) -> list[dict[str, Any]]: ...
    async def audit(self, action: str, target: str, origin: str, details: dict[str, Any] | None = None) -> None: ...
    async def add_policy_version(self, content_hash: str, content: str, diff: str) -> int: ...
    async def latest_policy_version(self) -> int: ...
    async def policy_version_hash(self, version: int) -> str | None: ...
    async def tasks(self, states: list[str] | None = None, kind: str | None = None, n: int = 200) -> list[dict]: ...
    async def read(self, fn: Callable[..., Any], *args: Any) -> Any: ...


class GatewaySeam(Protocol):
    """What the supervisor and governance need from the LLM gateway."""

    @property
    def state(self) -> str: ...
    def start(self) -> None: ...
    def totals(self, agent: str, policy: Policy | None = None) -> dict[str, Any]: ...
    def totals_snapshot(self, agent: str) -> dict[str, Any]: ...
    def seed_totals(self, agent: str, tokens: int, cost_usd: float, cost_today_usd: float, calls: int = 0,
                    errors: int = 0) -> None: ...
    def complete(self, agent: str, policy: Policy, messages: list[dict[str, Any]], model: str | None = None,
                 params: Mapping[str, Any] | None = None, *, policy_version: int = 0) -> Awaitable[dict[str, Any]]: ...
    def stream(self, agent: str, policy: Policy, messages: list[dict[str, Any]], model: str | None = None,
               params: Mapping[str, Any] | None = None, *, policy_version: int = 0) -> Any: ...


class BookSeam(Protocol):
    """What the supervisor reads of a validated policy book (an immutable snapshot)."""

    agents: list[AgentSpec]
    fleet: FleetSettings
    files: dict[str, str]
    content_hash: str

    def policy_for(self, agent_name: str) -> Policy: ...
    def describe(self, name: str) -> dict[str, Any]: ...


class InstanceHost(Protocol):
    """What an ``AgentInstance`` may ask of the supervisor that owns it, and nothing more.

    An instance reports (state, exit, notes, SDK messages) and asks for the few
    things it needs to spawn (run ids, the watchdog, the log hub's sinks). It
    never reaches into the rest of the supervisor.
    """

    fleet_dir: Path
    fleet_name: str
    token: str
    agent_sessions: bool
    loghub: LogHub
    stdin_watch: StdinWatch

    def next_run_id(self) -> int: ...
    def watchdog_add(self, pgid: int) -> None: ...
    def watchdog_remove(self, pgid: int) -> None: ...
    def on_state(self, inst: AgentInstance, prev: AgentState) -> None: ...
    def on_exit(self, inst: AgentInstance, returncode: int) -> None: ...
    def on_crash_loop(self, inst: AgentInstance, msg: str) -> None: ...
    def row_changed(self, inst: AgentInstance) -> None: ...
    def note(self, agent: str, text: str) -> None: ...
    def init_message(self, inst: AgentInstance) -> dict[str, Any]: ...
    def agent_log(self, inst: AgentInstance, msg: dict[str, Any]) -> None: ...
    def agent_metric(self, inst: AgentInstance, msg: dict[str, Any]) -> None: ...
    def agent_alert(self, inst: AgentInstance, msg: dict[str, Any]) -> None: ...
    async def agent_call(self, inst: AgentInstance, op: str, args: dict[str, Any],
                         push: Callable[[dict[str, Any]], None]) -> Any: ...


@dataclass
class Services:
    """Subsystems attached to a supervisor (``fleet.runtime`` attaches them all)."""

    approvals: ApprovalManager | None = None
    tasks: TaskQueue | None = None
    alerts: AlertEngine | None = None
    questions: QuestionBook | None = None
    #: The gateway's OpenAI/Anthropic-compatible HTTP endpoints (fleet.gateway.http.server).
    http_gateway: GatewayServer | None = None


StateHook = Callable[["AgentInstance", AgentState], None]
ExitHook = Callable[["AgentInstance", int], None]
LogHook = Callable[["AgentInstance", str, str], None]
MetricHook = Callable[["AgentInstance", str, float], None]
UsageHook = Callable[[UsageRecord], None]
AgentAlertHook = Callable[["AgentInstance", dict[str, Any]], None]
PolicyHook = Callable[["PolicyBook"], None]
TaskHook = Callable[[str | None, dict[str, Any]], None]


@dataclass
class Hooks:
    """Listeners of what happens in the fleet, by kind. Listeners must not block."""

    #: An instance changed state: ``(inst, previous state)``.
    on_state: list[StateHook] = field(default_factory=list)
    #: An instance's process ended: ``(inst, return code)`` (negative: killed by that signal).
    on_exit: list[ExitHook] = field(default_factory=list)
    #: A structured ``ctx.log`` record: ``(inst, LEVEL, text)``.
    on_log: list[LogHook] = field(default_factory=list)
    #: A ``ctx.metric`` sample: ``(inst, name, value)``.
    on_metric: list[MetricHook] = field(default_factory=list)
    #: An LLM call settled, was refused or failed.
    on_usage: list[UsageHook] = field(default_factory=list)
    #: ``ctx.alert(...)`` from an agent: ``(inst, {"rule", "severity", "message", "fields"})``.
    #: With no listener the supervisor publishes it as an ``alert`` event itself.
    on_agent_alert: list[AgentAlertHook] = field(default_factory=list)
    #: A new policy book was applied.
    on_policy: list[PolicyHook] = field(default_factory=list)
    #: A task changed: ``(agent or None, the task event's data)``.
    on_task: list[TaskHook] = field(default_factory=list)


def fire(listeners: list[Callable[..., Any]], *args: Any) -> bool:
    """Call every listener; a failing one is reported on stderr, never fatal. False if none."""
    if not listeners:
        return False
    for fn in list(listeners):
        try:
            fn(*args)
        except Exception as exc:
            print(f"fleet: listener {fn!r} failed: {exc!r}", file=sys.stderr)
    return True


SdkCall = Callable[["AgentInstance", dict[str, Any], Callable[[dict[str, Any]], None]], Awaitable[Any]]
