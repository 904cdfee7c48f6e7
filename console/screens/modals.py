"""Small modal dialogs: confirm quit, confirm an action, ask for a line of text, pick one option.

Each returns its answer through ``dismiss`` (``push_screen(..., callback)``),
so the caller, not the modal, decides what to do with it and which client
call to make: the modals never touch the fleet. Names, reasons and values
come from files, agents and users: they are shown as text, never as markup.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.validation import Function
from textual.widgets import Button, Footer, Input, Label, OptionList
from textual.widgets.option_list import Option

from console.widgets.nav import NavList


@dataclass(frozen=True)
class AgentCounts:
    """How many agents really run, are paused (alive, held) or stopped: what quitting leaves behind."""

    running: int
    paused: int
    stopped: int

    PAUSED: ClassVar[frozenset[str]] = frozenset({"paused", "pausing"})
    STOPPED: ClassVar[frozenset[str]] = frozenset({"stopped", "exited", "crashed", "crash-loop", "backoff", "lost"})

    @classmethod
    def of(cls, agents: Iterable[Mapping[str, Any]]) -> AgentCounts:
        states = [a.get("state") for a in agents]
        paused = sum(1 for s in states if s in cls.PAUSED)
        stopped = sum(1 for s in states if s in cls.STOPPED)
        return cls(len(states) - paused - stopped, paused, stopped)


class ConfirmQuit(ModalScreen[str | None]):
    """``q``: detach (the agents keep running), stop the fleet and quit, or cancel.

    The fleet is a daemon and this console one of its clients, so quitting
    asks what to do with the agents, says how many run and how to come back.
    The default (focused, ``enter``) is to detach when the fleet was running
    before this console, and to stop it when this console started it. A
    second ``q`` (or ``ctrl+c``) detaches: hammering the quit key never stops
    agents. Answers ``"detach"``, ``"stop"`` or ``None`` (cancel).
    """

    BINDINGS = [
        Binding("d", "dismiss('detach')", "Detach"),
        Binding("s", "dismiss('stop')", "Stop fleet and quit"),
        Binding("escape,c", "dismiss(None)", "Cancel"),
        Binding("q,ctrl+c", "dismiss('detach')", "Detach", show=False),
    ]

    def __init__(self, fleet_name: str, running: int, *, started_here: bool, fleet_dir: str = "",
                 paused: int = 0, stopped: int = 0) -> None:
        super().__init__(classes="dialog-screen")
        self.fleet_name = fleet_name
        self.running = running
        self.paused = paused
        self.stopped = stopped
        self.started_here = started_here
        self.fleet_dir = fleet_dir

    def compose(self) -> ComposeResult:
        agents = f"{self.running} agent{'s' if self.running != 1 else ''}"
        are = "is" if self.running == 1 else "are"
        where = f"`fleet` in {self.fleet_dir}" if self.fleet_dir else "`fleet` in the fleet's directory"
        with Vertical(classes="dialog quit-dialog"):
            yield Label(Content(f"Quit the console of fleet {self.fleet_name}?"), classes="dialog-title")
            others = [f"{n} {what}" for n, what in ((self.paused, "paused"), (self.stopped, "stopped")) if n]
            yield Label(Content(f"{agents} {are} running{'; ' + ', '.join(others) if others else ''}."),
                        classes="dialog-body")
            yield Label(Content(f"d  Detach: the agents keep running; {where} opens the console again."),
                        classes="dialog-body")
            yield Label(Content("s  Stop the fleet: every agent stops gracefully, then the fleet; then quit."),
                        classes="dialog-body")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Detach (d)", variant="primary", id="detach")
                yield Button("Stop fleet (s)", variant="error", id="stop")
                yield Button("Cancel (esc)", variant="default", id="cancel")
        yield Footer()  # this dialog's keys, not those of the screen beneath

    def on_mount(self) -> None:
        self.query_one("#stop" if self.started_here else "#detach", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None if event.button.id == "cancel" else event.button.id)


class ConfirmAction(ModalScreen[bool]):
    """Ask before something hard to undo (stopping agents, restarting several): ``y`` does it.

    Args:
        question: what will happen, e.g. "Stop 2 agents?".
        names: the agents it touches, listed one per line (the first 8, then a count).
        detail: one more line (what it means), or ''.
        yes: the label of the confirming button, e.g. "Stop".
    """

    BINDINGS = [
        Binding("y", "dismiss(True)", "Yes"),
        Binding("n", "dismiss(False)", "No"),
        Binding("escape", "dismiss(False)", "Cancel"),
    ]
    SHOWN_NAMES = 8

    def __init__(self, question: str, names: list[str], *, detail: str = "", yes: str = "Yes") -> None:
        super().__init__(classes="dialog-screen")
        self.question = question
        self.names = names
        self.detail = detail
        self.yes = yes

    def compose(self) -> ComposeResult:
        shown = self.names[: self.SHOWN_NAMES]
        listing = "\n".join(f"  {name}" for name in shown)
        if len(self.names) > len(shown):
            listing += f"\n  … and {len(self.names) - len(shown)} more"
        with Vertical(classes="dialog confirm"):
            yield Label(Text(self.question), classes="dialog-title")
            yield Label(Text(listing, style="bold"), classes="dialog-body")
            if self.detail:
                yield Label(Text(self.detail), classes="dialog-body")
            yield Label(Text.assemble(("y", "bold"), f" {self.yes.lower()}   ", ("n", "bold"), "/", ("esc", "bold"),
                                      " cancel"), classes="dialog-hint")  # fmt: skip
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self.yes} (y)", variant="error", id="yes")
                yield Button("Cancel", variant="default", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


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
            yield Label(Text(self.title_text), classes="dialog-title")
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
    """Pick one of a few strings (a model from the allow-list, the scope of an edit).

    Args:
        unavailable: choices shown but refused, with why (a model without a key).
        labels: what to show for a choice, when not the choice itself.
    """

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(
        self,
        title: str,
        choices: list[str],
        current: str | None = None,
        *,
        unavailable: dict[str, str] | None = None,
        labels: dict[str, str] | None = None,
    ) -> None:
        super().__init__(classes="dialog-screen")
        self.title_text = title
        self.choices = choices
        self.current = current
        self.unavailable = unavailable or {}
        self.labels = labels or {}

    def _option(self, choice: str) -> Option:
        text = Text("● " if choice == self.current else "  ")
        text.append(self.labels.get(choice, choice))
        why = self.unavailable.get(choice)
        if why:
            text.stylize("dim")
            text.append(f"  ✖ {why}", style="red")
        return Option(text, id=choice)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Text(self.title_text), classes="dialog-title")
            yield NavList(*(self._option(c) for c in self.choices), id="choices")
            yield Label("enter: choose   esc: cancel", classes="dialog-hint")

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        options.highlighted = self.choices.index(self.current) if self.current in self.choices else 0

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        choice = event.option.id
        why = self.unavailable.get(choice or "")
        if why:
            self.notify(f"{choice} cannot be chosen: {why}", severity="error", timeout=4, markup=False)
            return
        self.dismiss(choice)
