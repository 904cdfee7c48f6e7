"""The key reference, generated from the bindings so it cannot drift (``console.keymap``)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import Static

from console.keymap import help_text
from console.widgets.nav import NavScroll


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
        with NavScroll(classes="dialog help"):
            yield Static("[b]Fleet Console keys[/b]", classes="dialog-title")
            # The dialog is at most 78 cells, 95 % of a narrower screen; less its border, padding, scrollbar.
            yield Static(help_text(min(72, int(self.app.size.width * 0.95) - 6)))
            yield Static("esc: close", classes="dialog-hint")
