"""Agent detail: full logs, goal, effective policy with origins, LLM calls, trends.

Tabs keep it usable at 80x24: the log tab gets the whole body; policy, calls
and sparklines are one key away (``[``/``]`` switch tabs). A tab's data is loaded by its own worker the
first time the tab is shown, not when the screen opens: filling the policy and
calls tables and the sparklines re-laid the screen out several times while the
operator waited for the logs (enter -> detail idle ~170 ms of ~500 here). Live
``usage``/``policy`` pushes keep a loaded tab current. The data comes from
the app (``ConsoleApp.policy_show`` ...): the screen never calls the client.
"""

from __future__ import annotations

import contextlib
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.css.query import NoMatches
from textual.widgets import Label, Sparkline, Static, TabbedContent, TabPane

from console import format as fmt
from console.contract import ConsoleApp, app_of
from console.screens.input_keys import INPUT_BINDINGS, is_waiting, takes_input
from console.screens.log_keys import LOG_BINDINGS, LogKeysMixin
from console.widgets.footer import FleetFooter
from console.widgets.log_pane import LogPane
from console.widgets.nav import NavTable as DataTable

TREND_MINUTES = 30
TREND_CALLS = 500
TRENDS = (("tokens", "tokens/min"), ("cost", "cost $/min"), ("errors", "errors/min"))


def per_minute(calls: list[dict[str, Any]], now: float, minutes: int = TREND_MINUTES) -> dict[str, list[float]]:
    """Bucket LLM calls into the last ``minutes`` minutes (oldest first).

    The supervisor's ``metrics`` op carries the agents' own metrics; the
    LLM trends are derived here from ``usage`` records so both sources agree.
    """
    out = {key: [0.0] * minutes for key, _ in TRENDS}
    for call in calls:
        age = now - float(call.get("ts", now))
        index = minutes - 1 - int(age // 60)
        if not 0 <= index < minutes:
            continue
        out["tokens"][index] += call.get("tokens_in", 0) + call.get("tokens_out", 0)
        out["cost"][index] += call.get("cost_usd", 0.0)
        if call.get("outcome", "ok") != "ok":
            out["errors"][index] += 1
    return out


def flatten(policy: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """``{"llm": {"model": "x"}}`` -> ``[("llm.model", "x")]`` (sorted by key)."""
    rows: list[tuple[str, Any]] = []
    for key, value in policy.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            rows.extend(flatten(value, path + "."))
        else:
            rows.append((path, value))
    return sorted(rows)


class AgentScreen(LogKeysMixin):
    """Everything about one agent."""

    BINDINGS = [
        *INPUT_BINDINGS,  # first: "i Answer" leads the footer while the agent waits
        Binding("escape", "back", "Back", tooltip="clear search, else back"),
        Binding("p", "op('pause')", "Pause"),
        Binding("r", "op('resume')", "Resume"),
        Binding("x", "op('restart')", "Restart"),
        Binding("s", "stop_start", "Stop/Start", tooltip="stop (asks first) or start this agent"),
        Binding("left_square_bracket", "tab(-1)", "Tab", key_display="[", show=False, tooltip="previous tab"),
        Binding("right_square_bracket", "tab(1)", "Tab", key_display="]", tooltip="next tab"),
        Binding("tab", "app.focus_next", "Pane", show=False, tooltip="focus the next pane"),
        Binding("b", "budget", "Budget", tooltip="set the daily budget (quick edit)"),
        Binding("M", "model", "Model", tooltip="switch the model (quick edit)"),
        *LOG_BINDINGS,
    ]
    TABS = ("tab-logs", "tab-policy", "tab-calls", "tab-trends")

    def __init__(self, agent: str) -> None:
        super().__init__(classes="agent-screen")
        self.agent = agent
        self.calls: list[dict[str, Any]] = []
        #: Data loaded so far: "policy", "usage" (calls table and trends), "metrics".
        self.loaded: set[str] = set()

    @property
    def console_app(self) -> ConsoleApp:
        return app_of(self)

    def compose(self) -> ComposeResult:
        yield Static(id="agent-head")
        yield Static(id="agent-why")  # why it is paused or stopped: the fleet's words, wrapped, never cut
        yield Static(id="agent-goal")
        with TabbedContent(id="agent-tabs"):
            with TabPane("Logs", id="tab-logs"):
                self._log_pane = LogPane(self.console_app.hub, self.agent, id="agent-log")
                yield self._log_pane
            with TabPane("Policy", id="tab-policy"):
                yield DataTable(id="policy-table", cursor_type="row")
            with TabPane("LLM calls", id="tab-calls"):
                yield DataTable(id="calls-table", cursor_type="row")
            with TabPane("Trends", id="tab-trends"), VerticalScroll():
                for key, label in TRENDS:
                    with Vertical(classes="trend"):
                        yield Label(label, id=f"label-{key}")
                        yield Sparkline([], id=f"spark-{key}")
                yield Vertical(id="custom-metrics")
        yield FleetFooter()

    def on_mount(self) -> None:
        self.console_app.ensure_history(self.agent)
        self.log_pane.set_active(self._logs_visible())
        self.update_head()
        self.set_interval(1.0, self._tick_head)  # the uptime in seconds (pushes omit uptime-only changes)
        policy = self.query_one("#policy-table", DataTable)
        policy.add_columns("key", "from", "value")  # long values scroll; where each comes from stays in view
        calls = self.query_one("#calls-table", DataTable)
        calls.add_columns("model", "in", "out", "cost", "latency", "outcome")

    #: What each tab needs loaded before it is shown.
    TAB_DATA = {"tab-policy": ("policy",), "tab-calls": ("usage",), "tab-trends": ("usage", "metrics")}

    def _load_for(self, tab: str) -> None:
        for what in self.TAB_DATA.get(tab, ()):
            if what not in self.loaded:
                self.loaded.add(what)
                {"policy": self.load_policy, "usage": self.load_usage, "metrics": self.load_metrics}[what]()

    def _logs_visible(self) -> bool:
        # Not while built ahead and unseen (``prepare_detail``): its first resume attaches it.
        return self.is_current and self.query_one(TabbedContent).active == "tab-logs"

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        # Hidden panes are not fed: only the Logs tab keeps its view attached.
        self.log_pane.set_active(self._logs_visible())
        self._load_for(event.pane.id or "")

    def on_screen_suspend(self) -> None:
        self.log_pane.set_active(False)

    def on_screen_resume(self) -> None:
        """Back on top (a kept screen reopened): catch up with what was missed while away."""
        self.log_pane.set_active(self._logs_visible())
        self.update_head()
        self.refresh_bindings()
        self.loaded.clear()  # what was loaded may be stale: reload the shown tab, the others when shown
        self._load_for(self.query_one(TabbedContent).active)

    def on_unmount(self) -> None:
        self.log_pane.set_active(False)

    def retarget(self, agent: str) -> None:
        """Be ``agent``'s screen instead: for a screen prepared ahead and never shown.

        Such a screen has loaded nothing (its tabs load on resume) and fed nothing (its
        log view is attached on resume), so only what names the agent changes: the
        head, and the log pane's source. Its layout and rendered lines stay, which is
        what makes a quick ``enter`` after the cursor moved on still cheap.
        """
        if self.loaded or self.is_current:
            raise RuntimeError("only a prepared screen that was never shown can be retargeted")
        self.agent = agent
        self.console_app.ensure_history(agent)
        self.log_pane.source = agent
        self.update_head()

    def _tick_head(self) -> None:
        with contextlib.suppress(NoMatches):  # a kept or prepared screen let go: its children are leaving
            self.update_head()

    def update_head(self) -> None:
        """Name, state (for how long), spend, uptime, policy; why it is paused or stopped; the goal."""
        agent = self.console_app.agents.get(self.agent, {})
        now = self.console_app.clock()
        head = Text.assemble((f" {self.agent} ", "bold"))
        head.append_text(fmt.state_detail(agent, now))
        head.append("  ")
        head.append_text(fmt.cost_vs_budget(agent))
        head.append(" today", style="dim")
        head.append(f"  up {fmt.duration(fmt.live_uptime(agent, now))}  policy {agent.get('policy', '?')}", "dim")
        self.query_one("#agent-head", Static).update(head)
        why = agent.get("reason") if agent.get("state") in fmt.EXPLAINED else None
        box = self.query_one("#agent-why", Static)
        box.update(Text(f" why: {why}", style="yellow") if why else "")
        box.display = bool(why)
        self.query_one("#agent-goal", Static).update(Text(f" goal: {agent.get('goal') or '-'}", style="italic"))

    # -- loading -----------------------------------------------------------------

    @work(group="agent-policy", exclusive=True, exit_on_error=False)
    async def load_policy(self) -> None:
        shown = await self.console_app.policy_show(self.agent)
        origins = shown.get("origins", {})
        table = self.query_one("#policy-table", DataTable)
        table.clear()
        for key, value in flatten(shown.get("policy", {})):
            origin = origins.get(key, "")
            table.add_row(
                Text(key), Text(origin, style="dim" if origin == "built-in" else "cyan"), Text(fmt.off(value))
            )

    @work(group="agent-usage", exclusive=True, exit_on_error=False)
    async def load_usage(self) -> None:
        result = await self.console_app.usage(self.agent, TREND_CALLS)
        calls = sorted(result.get("calls", []), key=lambda c: c.get("ts", 0.0))
        self.calls = calls[-TREND_CALLS:]
        table = self.query_one("#calls-table", DataTable)
        table.clear()
        for call in reversed(self.calls[-50:]):
            self._add_call(call, at_end=True)
        self.update_trends()

    def _add_call(self, call: dict[str, Any], at_end: bool = False) -> None:
        table = self.query_one("#calls-table", DataTable)
        outcome = call.get("outcome", "")
        endpoint = call.get("endpoint") or "sdk"
        row = (
            Text(str(call.get("model", "")) + ("" if endpoint == "sdk" else f" · {endpoint}")),
            str(call.get("tokens_in", 0)),
            str(call.get("tokens_out", 0)),
            f"${call.get('cost_usd', 0.0):.4f}",
            f"{call.get('latency_s', 0.0):.2f}s",
            Text(outcome, style="green" if outcome == "ok" else "red"),
        )
        if at_end or not table.row_count:
            table.add_row(*row)
        else:
            # Newest first: rebuild is cheap for 50 rows and keeps the order right.
            rows = [table.get_row_at(i) for i in range(table.row_count)]
            table.clear()
            for values in [list(row), *rows][:50]:
                table.add_row(*values)

    def update_trends(self) -> None:
        """Sparklines of tokens, cost and errors per minute, derived from LLM calls."""
        series = per_minute(self.calls, self.console_app.clock())
        for key, label in TRENDS:
            data = series[key]
            self.query_one(f"#spark-{key}", Sparkline).data = data
            now = data[-1] if data else 0.0
            shown = f"{now:.4f}" if key == "cost" else f"{now:.0f}"
            total = f"{sum(data):.4f}" if key == "cost" else f"{sum(data):.0f}"
            self.query_one(f"#label-{key}", Label).update(
                f"{label}: {shown} this minute, {total} in {TREND_MINUTES} min"
            )

    @work(group="agent-metrics", exclusive=True, exit_on_error=False)
    async def load_metrics(self) -> None:
        """The agent's own metrics (``ctx.metric``), one sparkline each."""
        result = await self.console_app.metrics(self.agent)
        mine = (result.get("metrics") or {}).get(self.agent) or {}
        box = self.query_one("#custom-metrics", Vertical)
        await box.remove_children()
        widgets = []
        for name, points in sorted(mine.items()):
            values = [float(p[1]) if isinstance(p, list | tuple) else float(p) for p in points][-120:]
            last = f"{values[-1]:.4g}" if values else "-"
            widgets.append(Vertical(Label(Text(f"{name}: {last}")), Sparkline(values), classes="trend"))
        if widgets:
            await box.mount_all(widgets)

    # -- live --------------------------------------------------------------------

    def fleet_event(self, kind: str, data: dict[str, Any]) -> None:
        if kind in ("state", "stats"):
            self.update_head()
            if kind == "state":
                self.refresh_bindings()
        elif kind == "usage" and data.get("agent") == self.agent and "usage" in self.loaded:
            call = {"ts": self.console_app.clock(), **data}
            self.calls = [*self.calls[-(TREND_CALLS - 1) :], call]
            self._add_call(call)
            self.update_trends()
        elif kind == "policy_applied" and "policy" in self.loaded:
            self.load_policy()

    # -- actions -------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        state = self.console_app.agents.get(self.agent, {}).get("state")
        if action == "op":
            if parameters[0] == "pause":
                return state in fmt.PAUSABLE
            if parameters[0] == "resume":
                return state in fmt.RESUMABLE
            return True
        if action == "answer":
            return is_waiting(self.console_app, self.agent)
        if action == "input":
            return takes_input(self.console_app, self.agent)
        return self.log_check_action(action)

    def action_op(self, op: str) -> None:
        self.console_app.request_op(op, [self.agent])

    def action_stop_start(self) -> None:
        state = self.console_app.agents.get(self.agent, {}).get("state")
        self.console_app.request_op("start" if state in fmt.STARTABLE else "stop", [self.agent])

    def action_tab(self, step: int) -> None:
        tabs = self.query_one(TabbedContent)
        index = self.TABS.index(tabs.active) if tabs.active in self.TABS else 0
        tabs.active = self.TABS[(index + step) % len(self.TABS)]

    def action_back(self) -> None:
        if self.log_pane.close_search() or self.log_pane.clear_search():
            return
        self.app.pop_screen()

    def action_budget(self) -> None:
        self.console_app.quick_budget(self.agent)

    def action_input(self) -> None:
        self.console_app.ask_input(self.agent)

    action_answer = action_input

    def action_model(self) -> None:
        self.console_app.quick_model(self.agent)

