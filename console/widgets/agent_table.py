"""The fleet table: one row per agent instance, cells updated in place.

The table is a view of the app's agents (``ConsoleApp.agents``, the one copy):
it keeps only what it shows — which columns fit, which rows pass the
filter and in which order, the multi-selection, and the text of each cell.

Columns fit the terminal: at 80 columns every agent's name, state (with why
and since when, for a paused or stopped one), uptime, cost today against its
budget, alerts and as much of the last line as fits; wider terminals add
CPU, memory, tokens, restarts and a budget bar, in that order, before the
last line. Rows can be filtered by text (name, state, policy, reason) and
sorted by a column.

Stats arrive every second for every agent; rebuilding rows would reset the
cursor and repaint everything, so the table remembers what each cell shows
and calls ``update_cell`` only for cells whose value changed.
``DataTable.update_cell`` repaints the whole table; with 200 agents whose
uptime ticks every second that was ~20 % of a core. Changed cells are written
with that repaint held back, and only their row is repainted — nothing at all
when the row is scrolled out of view.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable

from console import format as fmt
from console.widgets.nav import TABLE_KEYS


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    label: str
    width: int


#: Always shown (the name column's width follows the names).
BASE = (
    Column("name", "agent", 0),
    Column("state", "state", 19),
    Column("uptime", "up", 4),
    Column("cost", "today/cap", 10),
    Column("alerts", "⚠", 1),
)
#: Added, in this order, while the last line keeps ``LAST_MIN`` cells.
EXTRA = (
    Column("cpu", "cpu%", 5),
    Column("mem", "mem", 5),
    Column("tokens", "tokens", 6),
    Column("restarts", "rst", 3),
    Column("budget", "budget", 13),
)
LAST = Column("last", "last line", 0)
#: Cells the last line keeps before another optional column is added.
LAST_MIN = 40
NAME_MIN, NAME_MAX = 8, 24

#: Sort keys, in the order ``o`` cycles through them (None: fleet.toml order).
SORTS: tuple[str | None, ...] = (None, "cost", "cpu", "memory", "restarts", "state")
#: Column that shows the sorted value (it gets a ▼ in its header).
SORT_COLUMN = {"cost": "cost", "cpu": "cpu", "memory": "mem", "restarts": "restarts", "state": "state"}
#: States in the order a "state" sort lists them: trouble first.
_TROUBLE_FIRST = (
    "crash-loop", "crashed", "backoff", "paused", "pausing", "stopping", "exited", "stopped", "starting", "running"
)
STATE_RANK = {s: i for i, s in enumerate(_TROUBLE_FIRST)}


def sort_value(agent: dict[str, Any], key: str) -> Any:
    """The value a sort orders by; larger first, except state (trouble first)."""
    if key == "state":
        return STATE_RANK.get(agent.get("state", ""), len(STATE_RANK))
    field = {"cost": "cost_today_usd", "cpu": "cpu_pct", "memory": "rss_bytes", "restarts": "restarts"}[key]
    return -(agent.get(field) or 0)


def matches(agent: dict[str, Any], text: str) -> bool:
    """Every word of ``text`` is in the agent's name, state, policy or reason (case-insensitive)."""
    hay = " ".join(
        str(agent.get(k) or "") for k in ("name", "state", "policy", "reason_kind", "reason")
    ).casefold()
    return all(word in hay for word in text.casefold().split())


class AgentTable(DataTable[Any]):
    """Agents with live state, resources, spend and the latest log line.

    Args:
        agents: the app's agents by name, read only (the app updates them and
            then tells the table which changed).
    """

    BINDINGS = [Binding("space", "toggle_select", "Select", show=False), *TABLE_KEYS]
    #: True while ``_write_cell`` writes a cell (``refresh`` may run before ``__init__`` ends).
    _hold_repaint = False

    class SelectionChanged(Message):
        """The multi-selection changed (the screen refreshes its footer)."""

        def __init__(self, selected: frozenset[str]) -> None:
            super().__init__()
            self.selected = selected

    def __init__(self, agents: Mapping[str, dict[str, Any]], *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False)
        self.agents = agents
        self.selected: set[str] = set()
        self.filter_text = ""
        self.sort_key: str | None = None
        #: Names shown, in order (and as a set).
        self.order: list[str] = []
        self._shown_names: set[str] = set()
        self.columns_shown: tuple[Column, ...] = ()
        self._shown: dict[tuple[str, str], Any] = {}
        #: (agent, state) -> perf_counter() when the cell showed it (benchmarks).
        self.state_changed_at: dict[tuple[str, str], float] = {}
        self._layout_width = 0

    # -- columns -------------------------------------------------------------

    def layout_for(self, width: int) -> tuple[Column, ...]:
        """The columns that fit ``width`` cells: the base ones, then extras while the last line keeps room."""
        pad = 2 * self.cell_padding
        longest = max((len(n) for n in self.agents), default=NAME_MIN) + 1  # + the selection mark
        name = Column("name", "agent", max(NAME_MIN, min(NAME_MAX, longest)))
        columns = [name, *BASE[1:]]
        used = sum(c.width + pad for c in columns) + pad + 1  # the last line's padding, a scrollbar
        for extra in EXTRA:
            if width - used - extra.width - pad < LAST_MIN:
                break
            columns.append(extra)
            used += extra.width + pad
        columns.append(Column("last", LAST.label, max(8, width - used)))
        return tuple(columns)

    def on_resize(self, event: events.Resize) -> None:
        self.fit(event.size.width)

    def fit(self, width: int | None = None) -> None:
        """Choose the columns for the width (again, when the names changed) and rebuild if they differ."""
        width = width or self._layout_width or self.size.width
        if not width:
            return
        self._layout_width = width
        columns = self.layout_for(width)
        if columns != self.columns_shown:
            self.columns_shown = columns
            self.rebuild(force=True)

    def _label(self, column: Column) -> Text:
        if self.sort_key and SORT_COLUMN[self.sort_key] == column.key:
            return Text(f"{column.label}▼", style="bold")
        return Text(column.label)

    # -- rows ----------------------------------------------------------------

    def wanted_order(self) -> list[str]:
        names = [n for n, a in self.agents.items() if not self.filter_text or matches(a, self.filter_text)]
        if self.sort_key:
            key = self.sort_key
            names.sort(key=lambda n: sort_value(self.agents[n], key))  # stable: fleet.toml order breaks ties
        return names

    def rebuild(self, *, force: bool = False) -> None:
        """Lay the rows out again (filter, sort, new agents, columns), keeping the cursor's agent."""
        order = self.wanted_order()
        if not force and order == self.order:
            return
        if not self.columns_shown:
            return  # not laid out yet: ``fit`` comes with the first resize
        cursor = self.cursor_agent
        self.clear(columns=True)
        for column in self.columns_shown:
            self.add_column(self._label(column), key=column.key, width=column.width)
        self._shown.clear()
        now = self._now()
        for name in order:
            cells = self._cells(self.agents[name], now)
            self.add_row(*(cells[c.key] for c in self.columns_shown), key=name)
            for key, value in cells.items():
                self._shown[(name, key)] = _plain(value)
        self.order = order
        self._shown_names = set(order)
        if cursor in order:
            self.move_cursor(row=order.index(cursor), animate=False)

    def _cells(self, agent: dict[str, Any], now: float) -> dict[str, Any]:
        name = agent["name"]
        alerts = agent.get("alerts") or 0
        chosen = name in self.selected
        return {
            "name": Text(("✓" if chosen else " ") + name, style="bold" if chosen else ""),
            "state": fmt.state_cell(agent, now),
            "uptime": fmt.uptime(fmt.live_uptime(agent, now)),
            "restarts": str(agent.get("restarts", 0)),
            "cpu": "-" if agent.get("cpu_pct") is None else f"{agent['cpu_pct']:.1f}",
            "mem": fmt.size(agent.get("rss_bytes")),
            "tokens": fmt.count(agent.get("tokens")),
            "cost": fmt.cost_vs_budget(agent),
            "budget": fmt.bar(agent.get("budget_used")),
            "alerts": Text(str(alerts), style="bold red") if alerts else Text("·", style="dim"),
            "last": Text(fmt.one_line(agent.get("last_line"), 200)),  # text, never markup
        }

    def update_agents(self, names: Iterable[str]) -> None:
        """Some agents changed (or appeared): update their cells, or the rows when order or membership moved."""
        names = [n for n in names if n in self.agents]
        new = any(n not in self._shown_names for n in names)
        if (new or self.filter_text or self.sort_key) and self.wanted_order() != self.order:
            if new:
                self.fit()  # a new name may widen the name column
            self.rebuild()
            return
        now = self._now()
        for name in names:
            if name in self._shown_names:
                self._refresh_row(name, now)

    def remove_agent(self, name: str) -> None:
        self.selected.discard(name)
        self.rebuild()

    def tick_uptime(self) -> None:
        """Advance uptimes and state ages between pushes (called every second; most ticks change no cell)."""
        now = self._now()
        moved = []
        for name in self.order:
            agent = self.agents.get(name)
            if agent is None:
                continue
            changed = bool(agent.get("pid")) and self._write_cell(
                name, "uptime", fmt.uptime(fmt.live_uptime(agent, now))
            )
            if agent.get("since") and agent.get("state") in fmt.EXPLAINED:
                changed = self._write_cell(name, "state", fmt.state_cell(agent, now)) or changed
            if changed:
                moved.append(name)
        # Agents started together cross a 10 s step together: past a screenful, one repaint.
        if len(moved) > UPTIME_ROWS_ONE_BY_ONE:
            self.refresh()
        else:
            for name in moved:
                self.refresh_row(self.get_row_index(name))

    def _now(self) -> float:
        try:
            clock = getattr(self.app, "clock", None)
        except Exception:  # not mounted in an app (unit use): wall time
            clock = None
        return clock() if callable(clock) else time.time()

    def show_state(self, name: str) -> None:
        """The agent's state changed (a push): its state cell now, the row order if sorted or filtered."""
        agent = self.agents.get(name)
        if agent is None:
            return
        if (self.filter_text or self.sort_key == "state") and self.wanted_order() != self.order:
            self.rebuild()
        elif name in self._shown_names:
            self._refresh_row(name, self._now(), only=("state", "uptime"))
        self.state_changed_at[(name, agent.get("state", ""))] = time.perf_counter()

    def _refresh_row(self, name: str, now: float, only: tuple[str, ...] | None = None) -> None:
        cells = self._cells(self.agents[name], now)
        changed = False
        for key in only or cells:
            changed = self._write_cell(name, key, cells[key]) or changed
        if changed:
            self.refresh_row(self.get_row_index(name))

    def _write_cell(self, name: str, key: str, value: Any) -> bool:
        """Write a cell whose shown value changed, holding back the whole-table repaint.

        True when the row still needs its own repaint. Cells of columns not
        shown at this width are remembered, not written.
        """
        plain = _plain(value)
        if self._shown.get((name, key)) == plain:
            return False
        self._shown[(name, key)] = plain
        if not any(c.key == key for c in self.columns_shown):
            return False
        self._hold_repaint = True
        try:
            self.update_cell(name, key, value)
        finally:
            self._hold_repaint = False
        return True

    def refresh(self, *regions: Any, **kwargs: Any) -> Any:
        """Skip the whole-table repaint ``update_cell`` asks for while ``_write_cell`` writes a cell."""
        if self._hold_repaint and not regions and not kwargs:
            return self
        return super().refresh(*regions, **kwargs)

    # -- filter and sort ----------------------------------------------------------

    def set_filter(self, text: str) -> None:
        self.filter_text = text.strip()
        self.rebuild()

    def cycle_sort(self) -> str | None:
        """Sort by the next column (cost, cpu, memory, restarts, state, then none); returns it."""
        self.sort_key = SORTS[(SORTS.index(self.sort_key) + 1) % len(SORTS)]
        self.rebuild(force=True)
        return self.sort_key

    # -- cursor and selection ---------------------------------------------------

    @property
    def cursor_agent(self) -> str | None:
        if not self.row_count:
            return None
        row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        return str(row_key.value)

    def targets(self) -> list[str]:
        """The selection if any, else the agent under the cursor."""
        if self.selected:
            return [name for name in self.agents if name in self.selected]
        agent = self.cursor_agent
        return [agent] if agent else []

    def state_of(self, name: str) -> str | None:
        agent = self.agents.get(name)
        return agent.get("state") if agent else None

    def action_toggle_select(self) -> None:
        name = self.cursor_agent
        if name is None:
            return
        self.selected.symmetric_difference_update({name})
        self._refresh_row(name, self._now(), only=("name",))
        if self.cursor_row < self.row_count - 1:
            self.move_cursor(row=self.cursor_row + 1)
        self.post_message(self.SelectionChanged(frozenset(self.selected)))

    def clear_selection(self) -> None:
        names, self.selected = self.selected, set()
        for name in names:
            if name in self._shown_names:
                self._refresh_row(name, self._now(), only=("name",))
        self.post_message(self.SelectionChanged(frozenset()))


#: More uptime cells than this moving in one tick repaint the table once instead of row by row.
UPTIME_ROWS_ONE_BY_ONE = 20


def _plain(value: Any) -> Any:
    return value.plain + str(value.spans) if isinstance(value, Text) else value
