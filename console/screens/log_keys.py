"""Log keys shared by every screen that shows a ``LogPane``.

``/`` ``n`` ``N`` ``f`` ``w`` ``t`` and the filter key act on the screen's
visible pane wherever the focus is, so the operator can search the logs
while the cursor stays on the fleet table.
"""

from __future__ import annotations

from textual.binding import Binding
from textual.screen import Screen

from console.screens.filter import FilterPrompt
from console.widgets.log_pane import LogPane
from console.widgets.log_view import LogFilter

LOG_BINDINGS = [
    Binding("slash", "log_search", "Search", tooltip="search the log"),
    Binding("f", "log_follow", "Follow", tooltip="follow new lines, or stop"),
    Binding("n", "log_next", "Next", show=False, tooltip="next match (from the view)"),
    Binding("N", "log_prev", "Prev", show=False, tooltip="previous match"),
    Binding("w", "log_wrap", "Wrap", show=False, tooltip="wrap long lines"),
    Binding("t", "log_time", "Time", show=False, tooltip="timestamps"),
    Binding("F", "log_filter", "Filter", show=False, tooltip="filter: stream, level, text"),
]


class LogKeysMixin(Screen[object]):
    """Forward log actions to ``self.log_pane`` (the visible pane)."""

    _log_pane: LogPane | None = None

    @property
    def log_pane(self) -> LogPane:
        """The pane made in ``compose`` (kept: it must outlive unmounting children)."""
        if self._log_pane is None:
            self._log_pane = self.query_one(LogPane)
        return self._log_pane

    def action_log_search(self) -> None:
        self.log_pane.open_search()

    def action_log_follow(self) -> None:
        pane = self.log_pane
        pane.toggle_follow()
        self.notify("Following new lines" if pane.follow else "Follow paused", timeout=1.5)

    def action_log_next(self) -> None:
        self.log_pane.find(forward=True)

    def action_log_prev(self) -> None:
        self.log_pane.find(forward=False)

    def action_log_wrap(self) -> None:
        self.log_pane.toggle_wrap()

    def action_log_time(self) -> None:
        self.log_pane.toggle_timestamps()

    def action_log_filter(self) -> None:
        pane = self.log_pane

        def apply(result: LogFilter | None) -> None:
            if result is not None:
                pane.filter = result

        self.app.push_screen(FilterPrompt(pane.filter), apply)

    def log_check_action(self, action: str) -> bool | None:
        if action in ("log_next", "log_prev"):
            return bool(self.log_pane.search)
        return True
