"""The key reference, generated from the bindings so it cannot drift."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

HELP = """\
[b]Fleet[/b]                              [b]Logs[/b]
 p  pause        P  pause all          /    search     n/N  next/prev
 r  resume       R  resume all         f    follow     w    wrap
 x  restart      s  stop/start         t    timestamps F    filter
 space select    esc clear selection   m    all agents / selected agent
 enter agent detail                    ↑ pgup home  scroll back, more history
 b  raise budget M  switch model
 i  type to its input (ctrl+d EOF), or answer its question
[b]Screens[/b]
 e  policy editor (ctrl+s save)        a  needs you: approvals (y, n), questions (enter)
 E  events       ctrl+p command palette   ?  this help    q  quit
"""


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
            yield Static(HELP)
            yield Static("esc: close", classes="dialog-hint")
