"""A supervisor-shaped stand-in for unit tests of the queue and the alert engine.

Just what those modules read: instances with a state, a run and a live policy,
a book with ``[fleet]`` settings, the real ``Hooks`` and ``Services``, ``publish``/``note``. Everything
published is kept in ``events`` so tests can check every transition.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from fleet.policy.schema import FleetSettings, Policy
from fleet.records import AgentState
from fleet.supervisor.instance import RunInfo
from fleet.supervisor.seams import Hooks, Services, fire

S = AgentState


def policy(**sections: dict[str, Any]) -> Policy:
    return Policy.model_validate(sections)


class FakeInst:
    def __init__(self, name: str, pol: Policy | None = None, run_id: int = 1) -> None:
        self.name = name
        self.group = name.split("#", 1)[0]
        self.policy = pol or policy()
        self.state = S.RUNNING
        self.want_paused = False
        self.reason: str | None = None
        self.run: RunInfo | None = RunInfo(run_id, 1000 + run_id, 0.0, 0.0)
        self.last_progress = time.monotonic() - 1e6  # long ago
        self.paused_with: list[str | None] = []

    def pause(self, reason: str | None = None, kind: str | None = None) -> bool:
        if self.want_paused:
            return False
        self.want_paused = True
        self.state = S.PAUSED
        self.paused_with.append(reason)
        return True


@dataclass
class FakeBook:
    fleet: FleetSettings = field(default_factory=FleetSettings)


class FakeLogHub:
    def __init__(self) -> None:
        self.last_output: dict[str, float] = {}


class FakeSup:
    def __init__(self, *insts: FakeInst, **fleet: Any) -> None:
        self.instances = {i.name: i for i in insts}
        self.book = FakeBook(FleetSettings.model_validate(fleet))
        self.store: Any = None
        self.gateway: Any = None
        self.services = Services()
        self.hooks = Hooks()
        self.loghub = FakeLogHub()
        self.events: list[tuple[str, str | None, dict[str, Any]]] = []
        self.notes: list[tuple[str, str]] = []
        self.stopping = False
        self.spawned: list[Any] = []

    def publish(self, kind: str, agent: str | None, data: dict[str, Any]) -> None:
        self.events.append((kind, agent, data))

    def hook(self, name: str, *args: Any) -> bool:
        """Fire the listeners of hook ``name`` (``on_usage`` ...), as the supervisor would."""
        return fire(getattr(self.hooks, name), *args)

    def note(self, agent: str, text: str) -> None:
        self.notes.append((agent, text))

    def spawn(self, coro: Any) -> None:
        self.spawned.append(coro)
        coro.close()

    def set_state(self, inst: FakeInst, state: AgentState, reason: str | None = None) -> None:
        prev = inst.state
        inst.state, inst.reason = state, reason
        self.hook("on_state", inst, prev)

    def of(self, kind: str) -> list[tuple[str | None, dict[str, Any]]]:
        return [(a, d) for k, a, d in self.events if k == kind]


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t
