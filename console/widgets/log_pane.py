"""A log pane: title line, the ``LogView`` and its search box.

The pane owns the view's settings (follow, wrap, timestamps, search, filter)
as reactives bound down to the view with ``data_bind``; the view only reports
what the operator did (``LogView.UserScrolled``). History is not fetched here:
the pane asks for it with ``LogPane.HistoryWanted`` and whoever owns the
client answers by calling ``history_loaded`` (one owner of the client).
"""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.reactive import reactive, var
from textual.widgets import Input, Static

from console.logring import MERGED, LogRings
from console.widgets.log_view import LogFilter, LogView


class LogPane(Vertical):
    """One log source with follow / search / wrap / timestamps / filter controls."""

    DEFAULT_CSS = """
    LogPane { height: 1fr; }
    LogPane > #log-title { height: 1; }
    LogPane > #log-search { display: none; height: 3; }
    LogPane.-searching > #log-search { display: block; }
    """

    class HistoryWanted(Message):
        """Older lines of ``agent`` are wanted: those before ``before_seq``.

        For the merged view (``agent == MERGED``) line numbers mean nothing
        across agents; ``cursor`` is the first line shown, as (ts, agent, seq).
        """

        def __init__(
            self, pane: LogPane, agent: str, before_seq: int, cursor: tuple[float, str, int] | None = None
        ) -> None:
            super().__init__()
            self.pane = pane
            self.agent = agent
            self.before_seq = before_seq
            self.cursor = cursor

    class TailWanted(Message):
        """The ring lost its newest lines to history; reload the tail of ``agent``."""

        def __init__(self, pane: LogPane, agent: str) -> None:
            super().__init__()
            self.pane = pane
            self.agent = agent

    BINDINGS = [Binding("escape", "close_search", "Close search", show=False)]

    source: reactive[str] = reactive(MERGED)
    follow: var[bool] = var(True)
    wrap: var[bool] = var(False)
    timestamps: var[bool] = var(False)
    search: var[str] = var("")
    filter: var[LogFilter] = var(LogFilter())

    def __init__(self, hub: LogRings, source: str = MERGED, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.hub = hub
        self.set_reactive(LogPane.source, source)
        self._matches = 0
        self._history_pending = False
        self._history_exhausted: set[str] = set()
        # Kept, not queried: screens detach it while their children unmount.
        self._view = LogView(hub, source, id="log-view")

    def compose(self) -> ComposeResult:
        yield Static(id="log-title")
        yield self._view.data_bind(LogPane.follow, LogPane.wrap, LogPane.timestamps, LogPane.search, LogPane.filter)
        yield Input(placeholder="search (enter: find, esc: close, n/N: next/prev)", id="log-search")

    @property
    def view(self) -> LogView:
        return self._view

    def on_mount(self) -> None:
        self._update_title()

    def set_active(self, active: bool) -> None:
        self.view.set_active(active)

    # -- reactives -------------------------------------------------------------

    def watch_source(self, source: str) -> None:
        self.view.set_source(source)
        self._update_title()

    def _watch_follow(self) -> None:
        self.set_class(self.follow, "-following")
        self._update_title()

    def _watch_wrap(self) -> None:
        self._update_title()

    def _watch_timestamps(self) -> None:
        self._update_title()

    def _watch_search(self) -> None:
        self._update_title()

    def _watch_filter(self) -> None:
        self._update_title()

    def _update_title(self) -> None:
        titles = self.query("#log-title")
        if not titles:
            return
        name = "all agents" if self.source == MERGED else self.source
        title = Text.assemble((" ▸ ", "bold"), (name, "bold"))
        title.append("  ")
        # Not an agent state's glyph or word: this is where the view is, not what the agent does.
        if self.follow:
            title.append("⇣ following", style="green")
        else:
            title.append("↑ scrolled back — f follows", style="cyan")
        if self.wrap:
            title.append("  wrap", style="dim")
        if self.timestamps:
            title.append("  time", style="dim")
        if self.filter.active:
            title.append(f"  filter {self.filter.describe()}", style="cyan")
        if self.search:
            title.append(f"  /{self.search} ({self._matches} rows, n/N)", style="magenta")
        titles.first(Static).update(title)

    # -- commands from the screen ---------------------------------------------

    def toggle_follow(self) -> None:
        self.follow = not self.follow
        if self.follow and self.source != MERGED and self.hub.ring(self.source).tail_dropped:
            self.post_message(self.TailWanted(self, self.source))

    def toggle_wrap(self) -> None:
        self.wrap = not self.wrap

    def toggle_timestamps(self) -> None:
        self.timestamps = not self.timestamps

    def open_search(self) -> None:
        self.add_class("-searching")
        search = self.query_one("#log-search", Input)
        search.value = self.search
        search.focus()

    def find(self, forward: bool = True) -> None:
        if not self.search:
            self.notify("No search: press / first", severity="warning", timeout=2)
            return
        self.follow = False
        if self.view.find(forward) is None:
            self.notify(f"No match for {self.search!r}", severity="warning", timeout=2, markup=False)
        elif self.view.wrapped:
            self.notify("Search wrapped to the " + ("oldest" if forward else "newest") + " lines", timeout=1.5)

    @on(Input.Submitted, "#log-search")
    def _search_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.search = event.value
        self._matches = self.view.count_matches() if self.search else 0
        self._update_title()
        self.remove_class("-searching")
        self.view.focus()
        if self.search:
            self.find(forward=False)

    def action_close_search(self) -> None:
        self.close_search()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "close_search":
            return self.has_class("-searching")
        return True

    def close_search(self) -> bool:
        if self.has_class("-searching"):
            self.remove_class("-searching")
            self.view.focus()
            return True
        return False

    def clear_search(self) -> bool:
        """Forget the search (its marks and ``n``/``N``); False when there was none."""
        if not self.search:
            return False
        self.search = ""
        self._matches = 0
        self.query_one("#log-search", Input).value = ""
        self._update_title()
        return True

    # -- history ---------------------------------------------------------------

    @on(LogView.UserScrolled)
    def _user_scrolled(self, event: LogView.UserScrolled) -> None:
        event.stop()
        if event.up and self.follow:
            self.follow = False
        elif not event.up and event.at_end and not self.follow:
            self.follow = True
        if event.up and event.at_top:
            self.want_history()

    def want_history(self) -> None:
        if self._history_pending or self.source in self._history_exhausted:
            return
        ring = self.hub.ring(self.source)
        if not ring.blocks:
            return
        head = ring.blocks[0]
        if self.source != MERGED and head.first_seq <= 1:
            return
        self._history_pending = True
        self.post_message(self.HistoryWanted(self, self.source, head.first_seq, (head.ts, head.agent, head.first_seq)))

    def history_loaded(self, agent: str, added: int) -> None:
        """Called by the owner of the client once older lines are in the ring."""
        self._history_pending = False
        if added == 0:
            self._history_exhausted.add(agent)
            self.notify(f"Start of {agent}'s log", timeout=2, markup=False)
            return
        if agent == self.source and self.view.active:
            self.view.rebuild(keep_offset=added if not self.view.wrap else None)

    def tail_loaded(self, agent: str) -> None:
        if agent == self.source and self.view.active:
            self.view.rebuild()
