"""The fleet view: status bar, agent table and the log pane below it.

The table's cursor chooses whose logs the pane shows; ``m`` switches the pane
to the merged log of all agents and back. Agent actions act on the
multi-selection when there is one, else on the cursor row; ``check_action``
hides keys that cannot apply (no "Pause" on a paused agent) so the footer
always shows what can be done now. ``\\`` filters the table as you type and
``o`` sorts it; ``tab`` moves the focus between the table and the log, and
the focused pane's top border lights up.

The screen is a view: it reads the app's agents and asks the app to act
(``ConsoleApp``); it never calls the client.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.timer import Timer
from textual.widgets import DataTable, Input, Static

from console import format as fmt
from console.contract import ConsoleApp, app_of
from console.logring import MERGED
from console.screens.input_keys import INPUT_BINDINGS, is_waiting, takes_input
from console.screens.log_keys import LOG_BINDINGS, LogKeysMixin
from console.widgets.agent_table import AgentTable
from console.widgets.footer import FleetFooter
from console.widgets.log_pane import LogPane

#: How often the uptime column is advanced locally (its cells change every 10 s at most).
UPTIME_TICK_S = 1.0
#: The cursor resting this long on an agent has its detail screen built ahead (``prepare_detail``).
PREPARE_REST_S = 0.3


class FleetScreen(LogKeysMixin):
    """Home screen of the console."""

    #: Started by each cursor move; when it fires the cursor has rested (``_prepare_detail``).
    _prepare_timer: Timer | None = None

    BINDINGS = [
        *INPUT_BINDINGS,  # first: "i Answer" leads the footer while the agent waits
        Binding("p", "agents('pause')", "Pause", tooltip="pause (selection or row)"),
        Binding("r", "agents('resume')", "Resume", tooltip="resume (selection or row)"),
        Binding("P", "all('pause')", "Pause all", show=False),
        Binding("R", "all('resume')", "Resume all", show=False),
        Binding("x", "agents('restart')", "Restart", tooltip="restart (asks if several)"),
        Binding("s", "stop_start", "Stop/Start", tooltip="stop (asks first) or start"),
        *LOG_BINDINGS[:2],
        Binding("tab", "app.focus_next", "Pane", tooltip="focus the next pane"),
        Binding(
            "shift+tab", "app.focus_previous", "Pane back", show=False, tooltip="focus the previous pane"
        ),
        Binding(
            "backslash", "filter_agents", "Filter", key_display="\\", tooltip="filter: name, state, policy"
        ),
        Binding("o", "sort", "Sort", tooltip="sort: cost cpu mem rst state"),
        Binding("space", "select", "Select", show=False, tooltip="select / unselect the row"),
        Binding("enter", "detail", "Detail", show=False, tooltip="agent detail"),
        Binding("m", "toggle_merged", "All logs", show=False, tooltip="log: this agent / all agents"),
        Binding("b", "budget", "Budget", show=False, tooltip="daily budget (quick edit)"),
        Binding("M", "model", "Model", show=False, tooltip="model (quick edit)"),
        Binding("escape", "clear", "Clear", show=False, tooltip="clear search/filter/selection"),
        *LOG_BINDINGS[2:],
    ]

    def __init__(self) -> None:
        super().__init__(id="fleet")
        self.merged = False
        self._info_shown: tuple[Text, int, int] | None = None

    @property
    def console_app(self) -> ConsoleApp:
        return app_of(self)

    def compose(self) -> ComposeResult:
        with Horizontal(id="topbar"):
            yield Static(id="fleet-info")
            yield Static(id="approvals-badge")
        yield Input(placeholder="filter agents: name, state, policy (enter: keep, esc: clear)", id="agent-filter")
        table = AgentTable(self.console_app.agents, id="agents")
        table.border_title = "agents"
        yield table
        self._log_pane = LogPane(self.console_app.hub, MERGED, id="fleet-log")
        yield self._log_pane
        yield FleetFooter()

    @property
    def table(self) -> AgentTable:
        return self.query_one(AgentTable)

    def on_mount(self) -> None:
        self.table.focus()
        if self.console_app.agents:
            self.update_agents(list(self.console_app.agents))
        self.update_info()
        # Pushes omit an agent whose only change is its uptime: the table runs that clock.
        self.set_interval(UPTIME_TICK_S, self.table.tick_uptime)

    def on_screen_resume(self) -> None:
        self.log_pane.set_active(True)
        self.refresh_bindings()
        self._rest_timer()  # back from a detail screen: the next one may be prepared again

    def on_screen_suspend(self) -> None:
        self.log_pane.set_active(False)

    # -- data from the app ------------------------------------------------------

    def update_info(self) -> None:
        if not self.query("#fleet-info"):
            return
        app = self.console_app
        info = Text.assemble((" ◆ ", "bold"), (app.fleet_name, "bold"))
        if app.status:
            version = app.status.get("policy_version")
            info.append(f"  policy v{version}" if version else "  policy …", style="dim")
            gateway = str(app.status.get("gateway", "?"))
            style = {"ready": "green", "loading": "yellow", "idle": "bright_black"}.get(gateway, "red")
            info.append("  gateway ", style="dim")
            info.append(gateway, style=style)
            counts: dict[str, int] = {}
            for agent in app.agents.values():
                counts[agent.get("state", "?")] = counts.get(agent.get("state", "?"), 0) + 1
            for state, n in sorted(counts.items()):
                symbol, style = fmt.STATE_GLYPHS.get(state, ("?", "white"))
                info.append(f"  {symbol} {n}", style=style)
            store_error = (app.status.get("store") or {}).get("error")
            if store_error:  # disk full...: logs paused, nothing lost; the header says so until it clears
                info.append(f"  ⚠ store: {str(store_error)[:60]} (logs paused)", style="bold red")
        else:
            info.append("  connecting…", style="dim")
        table = self.table
        if table.selected:
            info.append(f"  {len(table.selected)} selected", style="bold magenta")
        if app.status.get("gateway_url"):  # where agents' own clients reach it (last: the first cut at 80 columns)
            info.append(f"  {app.status['gateway_url']}/v1", style="dim")
        # The table's own title says how it is filtered and sorted (the top bar is full at 80 columns).
        title = "agents"
        if table.filter_text:
            title += f" · filter {table.filter_text!r} {len(table.order)}/{len(app.agents)}"
        if table.sort_key:
            title += f" · by {table.sort_key}"
        if table.border_title != title:
            table.border_title = Text(title)
        pending = app.pending_approvals
        questions = len(app.open_questions)
        # Stats arrive every second; Static.update re-lays the screen out, so only on a change.
        if (info, pending, questions) == self._info_shown:
            return
        self._info_shown = (info, pending, questions)
        self.query_one("#fleet-info", Static).update(info)
        badge = self.query_one("#approvals-badge", Static)
        parts = [f"{pending} approval{'s' if pending != 1 else ''}"] if pending else []
        parts += [f"{questions} question{'s' if questions != 1 else ''}"] if questions else []
        badge.update(f" ⚑ {', '.join(parts)} (a) " if parts else "")
        badge.set_class(bool(parts), "-pending")

    def update_agents(self, names: list[str]) -> None:
        """The app updated these agents (or learnt of them)."""
        if not self.query(AgentTable):
            return  # not composed yet: on_mount pulls the app's agents
        table = self.table
        first = not table.row_count
        table.update_agents(names)
        if first and table.row_count:
            self._follow_cursor()
        self.update_info()

    def fleet_event(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "state":
            self.agent_state(data)
        elif kind in ("approval", "question", "approvals_changed", "policy_applied", "policy_version"):
            self.update_info()

    def agent_state(self, data: dict[str, Any]) -> None:
        if not self.query(AgentTable):
            return
        if data.get("state") == "removed":
            self.table.remove_agent(data["agent"])
        else:
            self.table.show_state(data["agent"])
        self.update_info()
        self.refresh_bindings()

    # -- cursor -> log pane ---------------------------------------------------------

    @on(DataTable.RowHighlighted, "#agents")
    def _row_highlighted(self) -> None:
        self._follow_cursor()
        self.refresh_bindings()
        self._rest_timer()

    def _rest_timer(self) -> None:
        if self._prepare_timer is not None:
            self._prepare_timer.stop()
        self._prepare_timer = self.set_timer(PREPARE_REST_S, self._prepare_detail)

    def _prepare_detail(self) -> None:
        """The cursor has rested on an agent: build its detail screen now, so ``enter`` only shows it."""
        agent = self.table.cursor_agent
        if agent is not None and self.is_current:
            self.console_app.prepare_detail(agent)

    @on(DataTable.RowSelected, "#agents")
    def _row_selected(self) -> None:
        self.action_detail()

    @on(AgentTable.SelectionChanged)
    def _selection_changed(self) -> None:
        self.update_info()
        self.refresh_bindings()

    def _follow_cursor(self) -> None:
        agent = self.table.cursor_agent
        if agent is None or self.merged:
            return
        self.log_pane.source = agent
        self.console_app.ensure_history(agent)

    def action_toggle_merged(self) -> None:
        self.merged = not self.merged
        if self.merged:
            self.log_pane.source = MERGED
        else:
            self._follow_cursor()

    # -- actions ---------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        table = self.table
        states = [table.state_of(name) for name in table.targets()]
        if action == "agents":
            op = parameters[0]
            if op == "pause":
                return any(s in fmt.PAUSABLE for s in states)
            if op == "resume":
                return any(s in fmt.RESUMABLE for s in states)
            return bool(states)
        if action in ("stop_start", "detail", "budget", "model"):
            return bool(states)
        if action == "answer":
            return is_waiting(self.console_app, table.cursor_agent)
        if action == "input":
            return takes_input(self.console_app, table.cursor_agent)
        if action == "all":
            wanted = fmt.PAUSABLE if parameters[0] == "pause" else fmt.RESUMABLE
            return any(a.get("state") in wanted for a in table.agents.values())
        if action == "clear":
            return bool(table.selected or table.filter_text or self.log_pane.search or self._filter_open)
        return self.log_check_action(action)

    def action_agents(self, op: str) -> None:
        names = self.table.targets()
        if names:
            self.console_app.request_op(op, names)

    def action_all(self, op: str) -> None:
        self.console_app.agent_op(op, None)

    def action_stop_start(self) -> None:
        table = self.table
        names = table.targets()
        to_start = [n for n in names if table.state_of(n) in fmt.STARTABLE]
        to_stop = [n for n in names if n not in to_start]
        if to_stop:
            self.console_app.request_op("stop", to_stop)
        if to_start:
            self.console_app.agent_op("start", to_start)

    def action_detail(self) -> None:
        agent = self.table.cursor_agent
        if not agent:
            return
        if (self.console_app.agents.get(agent) or {}).get("tty"):
            self.console_app.offer_attach(agent)  # a terminal agent: its screen, or its detail
        else:
            self.console_app.open_detail(agent)

    def action_input(self) -> None:
        agent = self.table.cursor_agent
        if agent:
            self.console_app.ask_input(agent)

    action_answer = action_input

    def action_budget(self) -> None:
        agent = self.table.cursor_agent
        if agent:
            self.console_app.quick_budget(agent)

    def action_model(self) -> None:
        agent = self.table.cursor_agent
        if agent:
            self.console_app.quick_model(agent)

    def action_select(self) -> None:
        self.table.action_toggle_select()

    def action_clear(self) -> None:
        """One thing at a time: the log search box, the log search, the agent filter, the selection."""
        if self._filter_open:
            self._close_filter(clear=True)
            return
        if self.log_pane.close_search() or self.log_pane.clear_search():
            return
        if self.table.filter_text:
            self._close_filter(clear=True)
            return
        self.table.clear_selection()

    # -- filter and sort ---------------------------------------------------------------

    @property
    def _filter_open(self) -> bool:
        return self.has_class("-filtering")

    def action_filter_agents(self) -> None:
        self.add_class("-filtering")
        box = self.query_one("#agent-filter", Input)
        box.value = self.table.filter_text
        box.focus()

    @on(Input.Changed, "#agent-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.table.set_filter(event.value)
        self._follow_cursor()
        self.update_info()
        self.refresh_bindings()

    @on(Input.Submitted, "#agent-filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._close_filter(clear=False)

    def _close_filter(self, *, clear: bool) -> None:
        self.remove_class("-filtering")
        if clear:
            self.query_one("#agent-filter", Input).value = ""
            self.table.set_filter("")
        self.table.focus()
        self.update_info()
        self.refresh_bindings()

    def action_sort(self) -> None:
        key = self.table.cycle_sort()
        self.notify(f"Agents sorted by {key}" if key else "Agents in fleet.toml order", timeout=1.5)
        self.update_info()
