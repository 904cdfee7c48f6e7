"""The key reference, generated from the bindings so it cannot drift (``console.keymap``)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from console.keymap import help_text


class HelpScreen(ModalScreen[None]):
    """Keys of the console (also in the footer and the command palette)."""

    BINDINGS = [
        Binding("escape", "dismiss", "Close"),
        Binding("question_mark", "dismiss", "Close"),
        Binding("q", "dismiss", "Close"),
    ]

    def __init__(self) -> None:
        super().__init__(classes="dialog-screen")

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog help"):
            yield Static("[b]Fleet Console keys[/b]", classes="dialog-title")
            yield Static(help_text())
            yield Static("esc: close", classes="dialog-hint")
