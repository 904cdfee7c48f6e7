"""The log filter dialog: stream, minimum level and text.

Returns a new immutable ``LogFilter``; the pane that owns the filter applies
it (and its view rebuilds its rows from the ring).
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select

from console.widgets.log_view import LEVELS, LogFilter
from fleet.records import STREAMS


class FilterPrompt(ModalScreen[LogFilter | None]):
    """Edit a ``LogFilter``."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, current: LogFilter) -> None:
        super().__init__(classes="dialog-screen")
        self.current = current

    def compose(self) -> ComposeResult:
        stream = next(iter(self.current.streams)) if self.current.streams else Select.NULL
        with Vertical(classes="dialog"):
            yield Label("Filter log lines", classes="dialog-title")
            yield Select([(s, s) for s in STREAMS], value=stream, prompt="any stream", id="stream")
            yield Select(
                [(f"{lv.lower()} and above", lv) for lv in LEVELS],
                value=self.current.level or Select.NULL,
                prompt="any level",
                id="level",
            )
            yield Input(value=self.current.text, placeholder="containing text", id="text")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Apply", variant="primary", id="apply")
                yield Button("Clear", id="clear")

    def _result(self) -> LogFilter:
        stream = self.query_one("#stream", Select).value
        level = self.query_one("#level", Select).value
        return LogFilter(
            streams=None if stream is Select.NULL else frozenset({str(stream)}),
            level=None if level is Select.NULL else str(level),
            text=self.query_one("#text", Input).value,
        )

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.dismiss(self._result())

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(self._result() if event.button.id == "apply" else LogFilter())
