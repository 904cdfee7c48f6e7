"""Events: alerts, policy reloads and errors, approvals and state changes.

Notifications vanish; this list keeps them. It shows the stored events
(``events`` op, loaded when the screen first opens) followed by live pushes
the app collected since it started.
"""

from __future__ import annotations

import time
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Static

from console.contract import ConsoleApp, app_of
from console.widgets.footer import FleetFooter
from console.widgets.nav import NavTable as DataTable

KIND_STYLE = {"alert": "yellow", "policy_error": "red", "policy_applied": "green", "approval": "magenta"}


def describe(event: dict[str, Any]) -> str:
    """One line for an event of any kind."""
    data = event.get("data") or {}
    kind = event.get("kind")
    if kind == "alert":
        return f"{data.get('rule', '')}: {data.get('message', '')}"
    if kind == "policy_applied":
        return f"policy v{data.get('version')} applied ({', '.join(data.get('files', []))})"
    if kind == "policy_error":
        errors = data.get("errors") or [{}]
        e = errors[0]
        return f"{e.get('path')}:{e.get('line')}:{e.get('col')}: {e.get('message')}"
    if kind == "approval":
        return f"#{data.get('id')} {data.get('action')} {data.get('status')}"
    if kind == "state":
        reason = f" ({data['reason']})" if data.get("reason") else ""
        return f"{data.get('prev')} → {data.get('state')}{reason}"
    return ", ".join(f"{k}={v}" for k, v in data.items() if v not in (None, "", [], {}))


class EventsScreen(Screen[None]):
    """The fleet's recent events, newest last."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back")]

    @property
    def console_app(self) -> ConsoleApp:
        return app_of(self)

    def compose(self) -> ComposeResult:
        yield Static(" Events", classes="screen-title")
        yield DataTable(id="events-table", cursor_type="row")
        yield FleetFooter()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("time", "kind", "agent", "what")
        self.render_rows()
        if not self.console_app.events_loaded:
            self.console_app.load_events()

    def render_rows(self) -> None:
        table = self.query_one(DataTable)
        table.clear()
        for event in self.console_app.events:
            kind = event.get("kind", "")
            table.add_row(
                time.strftime("%H:%M:%S", time.localtime(event.get("ts") or 0)),
                Text(kind, style=KIND_STYLE.get(kind, "")),
                Text(event.get("agent") or ""),
                Text(describe(event)),
            )
        table.move_cursor(row=max(0, table.row_count - 1))
        table.call_after_refresh(table.scroll_end, animate=False)

    def fleet_event(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "events_loaded" or kind in (
            "alert",
            "policy_applied",
            "policy_error",
            "approval",
            "state",
        ):
            self.render_rows()
