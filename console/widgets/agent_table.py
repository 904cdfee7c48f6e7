"""The fleet table: one row per agent instance, cells updated in place.

Stats arrive every second for every agent; rebuilding rows would reset the
cursor and repaint everything, so the table remembers what each cell shows
and calls ``update_cell`` only for cells whose value changed. The state cell
is also updated straight from ``state`` events (the fastest feedback to a key
press), and the time of that update is kept for the latency benchmark.

``DataTable.update_cell`` repaints the whole table; with 200 agents whose
uptime ticks every second that was ~20 % of a core. Changed cells are written
with that repaint held back, and only their row is repainted — nothing at all
when the row is scrolled out of view.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable

from console import format as fmt
from fleet.wire import AgentRow

COLUMNS: tuple[tuple[str, str, int | None], ...] = (
    ("sel", " ", 1),
    ("name", "agent", None),
    ("state", "state", 12),
    ("uptime", "up", 6),
    ("restarts", "rst", 3),
    ("cpu", "cpu%", 5),
    ("mem", "mem", 5),
    ("tokens", "tokens", 6),
    ("cost", "today", 6),
    ("budget", "budget", 13),
    ("alerts", "⚠", 2),
    ("last", "last line", 48),
)


class AgentTable(DataTable[Any]):
    """Agents with live state, resources, spend and the latest log line."""

    BINDINGS = [Binding("space", "toggle_select", "Select", show=False)]
    #: True while ``_write_cell`` writes a cell (``refresh`` may run before ``__init__`` ends).
    _hold_repaint = False

    class SelectionChanged(Message):
        """The multi-selection changed (the screen refreshes its footer)."""

        def __init__(self, selected: frozenset[str]) -> None:
            super().__init__()
            self.selected = selected

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False)
        #: The rows as the fleet sent them (``fleet.wire.AgentRow``) plus ``uptime_at``, stamped on receipt.
        self.agents: dict[str, AgentRow] = {}
        self.selected: set[str] = set()
        self._shown: dict[tuple[str, str], Any] = {}
        #: (agent, state) -> perf_counter() when the cell showed it (benchmarks).
        self.state_changed_at: dict[tuple[str, str], float] = {}
        for key, label, width in COLUMNS:
            self.add_column(label, key=key, width=width)
        self.fixed_columns = 2

    # -- data -----------------------------------------------------------------

    def _cells(self, agent: AgentRow) -> dict[str, Any]:
        name = agent["name"]
        state = agent.get("state", "?")
        alerts = agent.get("alerts") or 0
        return {
            "sel": Text("✓", style="bold") if name in self.selected else "",
            "name": Text(name, style="bold" if name in self.selected else ""),
            "state": fmt.state_text(state),
            "uptime": fmt.uptime(fmt.live_uptime(agent, self._now())),
            "restarts": str(agent.get("restarts", 0)),
            "cpu": "-" if agent.get("cpu_pct") is None else f"{agent['cpu_pct']:.1f}",
            "mem": fmt.size(agent.get("rss_bytes")),
            "tokens": fmt.count(agent.get("tokens")),
            "cost": fmt.usd(agent.get("cost_today_usd")),
            "budget": fmt.bar(agent.get("budget_used")),
            "alerts": Text(str(alerts), style="bold red") if alerts else Text("·", style="dim"),
            "last": fmt.one_line(agent.get("last_line"), 80),
        }

    def update_agents(self, agents: Iterable[AgentRow]) -> None:
        """Merge a status/stats list: add new rows, update changed cells."""
        for agent in agents:
            name = agent["name"]
            known = self.agents.get(name)
            if known is None:
                self.agents[name] = dict(agent)
                cells = self._cells(agent)
                self.add_row(*(cells[key] for key, _, _ in COLUMNS), key=name)
                for key, value in cells.items():
                    self._shown[(name, key)] = _plain(value)
                continue
            changed = any(known.get(key) != value for key, value in agent.items() if key not in _CLOCK)
            known.update(agent)
            if changed:
                self._refresh_row(name)
            else:  # a new uptime reading alone: at most the uptime cell moves
                self._refresh_row(name, only=("uptime",))

    def tick_uptime(self) -> None:
        """Advance the uptime column between pushes (called every second; most ticks change no cell)."""
        now = self._now()
        moved = [
            name
            for name, agent in self.agents.items()
            if agent.get("pid") and self._write_cell(name, "uptime", fmt.uptime(fmt.live_uptime(agent, now)))
        ]
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

    def set_state(self, name: str, state: str, reason: str | None = None) -> None:
        agent = self.agents.get(name)
        if agent is None:
            return
        agent["state"] = state
        agent["reason"] = reason
        self._refresh_row(name, only=("state",))
        self.state_changed_at[(name, state)] = time.perf_counter()

    def _refresh_row(self, name: str, only: tuple[str, ...] | None = None) -> None:
        cells = self._cells(self.agents[name])
        changed = False
        for key in only or cells:
            changed = self._write_cell(name, key, cells[key]) or changed
        if changed:
            self.refresh_row(self.get_row_index(name))

    def _write_cell(self, name: str, key: str, value: Any) -> bool:
        """Write a cell whose shown value changed, holding back the whole-table repaint.

        True when the row still needs its own repaint (the name cell, which may widen
        its column, repaints the table itself).
        """
        plain = _plain(value)
        if self._shown.get((name, key)) == plain:
            return False
        self._shown[(name, key)] = plain
        if key == "name":
            self.update_cell(name, key, value, update_width=True)
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
        self._refresh_row(name, only=("sel", "name"))
        if self.cursor_row < self.row_count - 1:
            self.move_cursor(row=self.cursor_row + 1)
        self.post_message(self.SelectionChanged(frozenset(self.selected)))

    def clear_selection(self) -> None:
        names, self.selected = self.selected, set()
        for name in names:
            self._refresh_row(name, only=("sel", "name"))
        self.post_message(self.SelectionChanged(frozenset()))


#: More uptime cells than this moving in one tick repaint the table once instead of row by row.
UPTIME_ROWS_ONE_BY_ONE = 20

#: Keys that only say what the uptime is and when it was read: not a change to repaint a row for.
_CLOCK = frozenset({"uptime_s", "uptime_at"})


def _plain(value: Any) -> Any:
    return value.plain + str(value.spans) if isinstance(value, Text) else value
