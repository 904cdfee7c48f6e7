"""A one-line input for an agent's stdin (``i``): enter sends the line, ctrl+d end-of-file.

Like the other modals it only returns what was typed (``SentInput``); the app
makes the ``send`` call. The agent's last line (usually its question) is shown
above the input, so the operator answers what was asked.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label


@dataclass(frozen=True, slots=True)
class SentInput:
    """What to write: ``text`` and a newline, then end-of-file if ``eof``."""

    text: str
    eof: bool = False


class SendInput(ModalScreen[SentInput | None]):
    """Type a line for ``agent``'s input."""

    BINDINGS = [
        Binding("escape", "dismiss(None)", "Cancel"),
        Binding("ctrl+d", "eof", "Send EOF", priority=True),
    ]

    def __init__(self, agent: str, prompt: str = "") -> None:
        super().__init__(classes="dialog-screen")
        self.agent = agent
        self.prompt = prompt

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"Input for [b]{self.agent}[/]", classes="dialog-title")
            if self.prompt:
                yield Label(self.prompt, classes="dialog-body", markup=False)
            yield Input(placeholder="a line for its stdin", id="input-line")
            yield Label("enter: send   ctrl+d: end of input   esc: cancel", classes="dialog-hint")

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        self.dismiss(SentInput(event.value))

    def action_eof(self) -> None:
        self.dismiss(SentInput(self.query_one(Input).value, eof=True))
