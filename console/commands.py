"""Command palette provider: every console action, per agent by name.

The palette (ctrl+p) is the discoverable twin of the keys: "Pause
anomaly-watch", "Restart ticker", "Open approvals"... Commands are built from
the app's current agent list each time the palette opens, so new agents
appear without registration.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider

from console import format as fmt

if TYPE_CHECKING:
    from console.app import FleetConsole

AGENT_OPS = (
    ("Pause", "pause", fmt.PAUSABLE),
    ("Resume", "resume", fmt.RESUMABLE),
    ("Restart", "restart", None),
    ("Stop", "stop", fmt.STOPPABLE),
    ("Start", "start", fmt.STARTABLE),
)


class FleetCommands(Provider):
    """Fleet actions for the command palette."""

    def _commands(self) -> list[tuple[str, Callable[[], object], str]]:
        from console.app import FleetConsole

        app = self.app
        if not isinstance(app, FleetConsole):
            return []
        console: FleetConsole = app
        commands: list[tuple[str, Callable[[], object], str]] = [
            ("Pause all agents", partial(console.agent_op, "pause", None), "p on every agent"),
            ("Resume all agents", partial(console.agent_op, "resume", None), "r on every agent"),
            ("Open approvals", console.action_approvals, "a"),
            ("Edit policy", console.action_edit_policy, "e"),
            ("Show events", console.action_events, "E"),
            ("Show keys help", console.action_help, "?"),
        ]
        for name, agent in console.agents.items():
            state = agent.get("state", "")
            for label, op, states in AGENT_OPS:
                if states is None or state in states:
                    commands.append((f"{label} {name}", partial(console.agent_op, op, [name]), f"{op} ({state})"))
            commands.append((f"Detail {name}", partial(console.open_detail, name), "logs, policy, LLM calls"))
            commands.append((f"Raise budget of {name}", partial(console.quick_budget, name), "set_override"))
            commands.append((f"Switch model of {name}", partial(console.quick_model, name), "set_override"))
        return commands

    async def discover(self) -> Hits:
        for text, command, help_text in self._commands():
            yield DiscoveryHit(text, command, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for text, command, help_text in self._commands():
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), command, text=text, help=help_text)
