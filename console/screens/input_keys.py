"""The ``i`` key's two faces: shown as "Answer" while the agent waits, hidden otherwise.

``i`` writes to an agent's input or answers its question. Shown for every
running command agent it would crowd the footer; hidden always, an agent
waiting for its operator gave no sign of how to answer. So the fleet and
agent screens declare ``i`` twice: ``answer`` (in the footer, enabled only
while the agent waits or asks) and ``input`` (hidden, enabled whenever its
input is open). Textual runs the first enabled binding of a key, and a
disabled binding is not in the footer.
"""

from __future__ import annotations

from textual.binding import Binding

from console import format as fmt
from console.contract import ConsoleApp

INPUT_BINDINGS = [
    Binding("i", "answer", "Answer", tooltip="answer it"),  # the help's "i" row says it
    Binding("i", "input", "Input", show=False, tooltip="type to its input / answer it"),
]


def is_waiting(app: ConsoleApp, agent: str | None) -> bool:
    """The agent waits for its operator: a question is open, or its state is ``waiting``."""
    if not agent:
        return False
    info = app.agents.get(agent) or {}
    return info.get("state") == "waiting" or any(q.get("agent") == agent for q in app.open_questions)


def takes_input(app: ConsoleApp, agent: str | None) -> bool:
    """``i`` can write to it: it waits, or it is a command agent whose process reads its input."""
    info = app.agents.get(agent or "") or {}
    return is_waiting(app, agent) or (info.get("kind") == "command" and info.get("state") in fmt.INPUTTABLE)
