"""Command palette provider: every console action, per agent by name.

The palette (ctrl+p) is the discoverable twin of the keys: "Pause
anomaly-watch", "Restart ticker", "Open approvals"... Commands are built from
the app's current agent list each time the palette opens, so new agents
appear without registration. The hints name the key of each action, read
from the bindings (``console.keymap.key_for``), so they cannot drift from the keys.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from console import format as fmt
from console.contract import ConsoleApp, app_of
from console.keymap import key_for

#: (label, op, states it applies in, the action of its key)
AGENT_OPS = (
    ("Pause", "pause", fmt.PAUSABLE, "agents('pause')"),
    ("Resume", "resume", fmt.RESUMABLE, "agents('resume')"),
    ("Restart", "restart", None, "agents('restart')"),
    ("Stop", "stop", fmt.STOPPABLE, "stop_start"),
    ("Start", "start", fmt.STARTABLE, "stop_start"),
)


def _hint(action: str, what: str = "") -> str:
    key = key_for(action)
    return f"{key}  {what}".strip() if key else what


class FleetCommands(Provider):
    """Fleet actions for the command palette."""

    def _commands(self) -> list[tuple[str, Callable[[], object], str]]:
        console: ConsoleApp = app_of(self.screen)
        run = self.app.run_action
        commands: list[tuple[str, Callable[[], object], str]] = [
            ("Pause all agents", partial(console.agent_op, "pause", None), _hint("all('pause')")),
            ("Resume all agents", partial(console.agent_op, "resume", None), _hint("all('resume')")),
            ("Open approvals", partial(run, "approvals"), _hint("approvals")),
            ("Edit policy", partial(run, "edit_policy"), _hint("edit_policy")),
            ("Show events", partial(run, "events"), _hint("events")),
            ("Show keys help", partial(run, "help"), _hint("help")),
        ]
        for name, agent in console.agents.items():
            state = agent.get("state", "")
            for label, op, states, action in AGENT_OPS:
                if states is None or state in states:
                    commands.append((f"{label} {name}", partial(console.request_op, op, [name]), _hint(action, state)))
            commands.append((f"Detail {name}", partial(console.open_detail, name), _hint("detail", "logs, policy")))
            commands.append((f"Raise budget of {name}", partial(console.quick_budget, name), _hint("budget")))
            commands.append((f"Switch model of {name}", partial(console.quick_model, name), _hint("model")))
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
