"""Small modal dialogs: confirm quit, ask for a line of text, pick one option.

Each returns its answer through ``dismiss`` (``push_screen(..., callback)``),
so the caller, not the modal, decides what to do with it and which client
call to make: the modals never touch the fleet.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.validation import Function
from textual.widgets import Button, Input, Label, OptionList
from textual.widgets.option_list import Option


class ConfirmQuit(ModalScreen[bool]):
    """Quitting an embedded fleet stops its agents: say so and ask."""

    BINDINGS = [Binding("escape", "dismiss(False)", "Cancel"), Binding("y", "dismiss(True)", "Stop and quit")]

    def __init__(self, fleet_name: str, running: int) -> None:
        super().__init__(classes="dialog-screen")
        self.fleet_name = fleet_name
        self.running = running

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"Quit fleet [b]{self.fleet_name}[/]?", classes="dialog-title")
            yield Label(
                f"The fleet runs inside this console: quitting stops its {self.running} running "
                "agent(s). Run it with `fleet run` to keep agents alive without a console.",
                classes="dialog-body",
            )
            with Horizontal(classes="dialog-buttons"):
                yield Button("Stop agents and quit", variant="error", id="stop")
                yield Button("Cancel", variant="default", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "stop")


class TextPrompt(ModalScreen[str | None]):
    """Ask for one line (a deny reason, a new budget); ``None`` when cancelled."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, title: str, *, placeholder: str = "", value: str = "", number: bool = False) -> None:
        super().__init__(classes="dialog-screen")
        self.title_text = title
        self.placeholder = placeholder
        self.value = value
        self.number = number

    def compose(self) -> ComposeResult:
        validators = [Function(_is_number, "a number ≥ 0")] if self.number else []
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title")
            yield Input(
                value=self.value,
                placeholder=self.placeholder,
                validators=validators,
                type="number" if self.number else "text",
                id="prompt",
            )
            yield Label("enter: ok   esc: cancel", classes="dialog-hint")

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        if event.validation_result is not None and not event.validation_result.is_valid:
            self.notify("Enter a number ≥ 0", severity="error", timeout=2)
            return
        self.dismiss(event.value)


def _is_number(text: str) -> bool:
    try:
        return float(text) >= 0
    except ValueError:
        return False


class ChoicePrompt(ModalScreen[str | None]):
    """Pick one of a few strings (a model from the allow-list)."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, title: str, choices: list[str], current: str | None = None) -> None:
        super().__init__(classes="dialog-screen")
        self.title_text = title
        self.choices = choices
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title")
            yield OptionList(
                *(Option(("● " if c == self.current else "  ") + c, id=c) for c in self.choices), id="choices"
            )
            yield Label("enter: choose   esc: cancel", classes="dialog-hint")

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        if self.current in self.choices:
            options.highlighted = self.choices.index(self.current)

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)
