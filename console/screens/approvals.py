"""Pending approvals: who asks to do what, how long ago, and how long is left.

The list is a view of ``FleetConsole.approvals`` (fed by ``approval`` pushes),
re-rendered on change and once a second for the ages. ``y`` approves; ``n``
asks for a reason first, because a denial without one teaches the agent
nothing.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Static

from console import format as fmt
from console.screens.modals import TextPrompt
from console.widgets.footer import FleetFooter

if TYPE_CHECKING:
    from console.app import FleetConsole


def details_text(details: Any) -> str:
    """Approval details as one line: strings as they are, structures as compact JSON."""
    if isinstance(details, str):
        return details
    try:
        return json.dumps(details, ensure_ascii=False, separators=(", ", ": "), default=str)
    except (TypeError, ValueError):
        return str(details)


class ApprovalsScreen(Screen[None]):
    """Approve or deny what agents may not do alone."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("y", "approve", "Approve"),
        Binding("n", "deny", "Deny"),
    ]

    @property
    def console_app(self) -> FleetConsole:
        from console.app import FleetConsole

        assert isinstance(self.app, FleetConsole)
        return self.app

    def compose(self) -> ComposeResult:
        yield Static(" ⚑ Approvals", id="approvals-title", classes="screen-title")
        yield DataTable(id="approvals-table", cursor_type="row")
        yield Static("", id="approval-details")
        yield FleetFooter()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_column("id", key="id", width=4)
        table.add_column("agent", key="agent")
        table.add_column("action", key="action")
        table.add_column("age", key="age", width=6)
        table.add_column("left", key="left", width=6)
        table.add_column("details", key="details")
        self.render_rows()
        self.set_interval(1.0, self.update_ages)
        self.console_app.reload_approvals()

    def _pending(self) -> list[dict[str, Any]]:
        return sorted(
            (a for a in self.console_app.approvals.values() if a.get("status") == "pending"),
            key=lambda a: a.get("created", 0),
        )

    def _ages(self, approval: dict[str, Any]) -> tuple[str, Text]:
        age = self.console_app.clock() - approval.get("created", 0)
        left = approval.get("timeout_s", 0) - age
        return fmt.duration(age), Text(fmt.duration(max(left, 0)), style="red" if left < 60 else "")

    def render_rows(self) -> None:
        table = self.query_one(DataTable)
        cursor = table.cursor_row
        table.clear()
        pending = self._pending()
        for approval in pending:
            age, left = self._ages(approval)
            table.add_row(
                str(approval["id"]),
                approval.get("agent", ""),
                Text(approval.get("action", ""), style="bold"),
                age,
                left,
                details_text(approval.get("details", ""))[:200],
                key=str(approval["id"]),
            )
        if pending:
            table.move_cursor(row=min(cursor, len(pending) - 1))
        title = f" ⚑ Approvals — {len(pending)} pending" if pending else " ⚑ Approvals — nothing pending"
        self.query_one("#approvals-title", Static).update(title)
        self._show_details()
        self.refresh_bindings()

    def update_ages(self) -> None:
        table = self.query_one(DataTable)
        for approval in self._pending():
            key = str(approval["id"])
            if key in table.rows:
                age, left = self._ages(approval)
                table.update_cell(key, "age", age)
                table.update_cell(key, "left", left)

    def on_data_table_row_highlighted(self) -> None:
        self._show_details()

    def _show_details(self) -> None:
        current = self.current()
        detail = self.query_one("#approval-details", Static)
        if current is None:
            detail.update("")
            return
        detail.update(
            Text.assemble(
                (f" {current.get('agent')} ", "bold"),
                "wants to ",
                (str(current.get("action")), "bold"),
                "\n ",
                details_text(current.get("details", "")),
            )
        )

    def current(self) -> dict[str, Any] | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        return self.console_app.approvals.get(int(str(row_key.value)))

    def fleet_event(self, kind: str, data: dict[str, Any]) -> None:
        if kind in ("approval", "approvals_changed"):
            self.render_rows()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("approve", "deny"):
            return self.current() is not None
        return True

    def action_approve(self) -> None:
        current = self.current()
        if current is not None:
            self.console_app.decide(current["id"], True)

    def action_deny(self) -> None:
        current = self.current()
        if current is None:
            return
        approval_id = current["id"]

        def reason(text: str | None) -> None:
            if text is not None:
                self.console_app.decide(approval_id, False, text or "denied by operator")

        self.app.push_screen(
            TextPrompt(f"Deny {current.get('action')} for {current.get('agent')}: reason?", placeholder="reason"),
            reason,
        )
