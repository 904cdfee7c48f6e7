"""Needs you: pending approvals and agents' open questions, one queue, oldest first.

The list is a view of ``FleetConsole.approvals`` and ``FleetConsole.questions``
(fed by ``approval`` and ``question`` pushes), re-rendered on change and once
a second for the ages. On an approval ``y`` approves and ``n`` asks for a
reason first, because a denial without one teaches the agent nothing; on a
question ``enter`` prompts for the answer (a pick when the agent gave choices).
Approval rows are keyed by their id, questions by ``q<ID>``: the two kinds number
independently.
"""

from __future__ import annotations

import json
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Static

from console import format as fmt
from console.contract import ConsoleApp, app_of
from console.screens.modals import TextPrompt
from console.widgets.footer import FleetFooter
from console.widgets.nav import NavTable as DataTable


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
        Binding("enter", "answer", "Answer"),
    ]

    @property
    def console_app(self) -> ConsoleApp:
        return app_of(self)

    def compose(self) -> ComposeResult:
        yield Static(" ⚑ Needs you", id="approvals-title", classes="screen-title")
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
        """Approvals and questions waiting for the operator, oldest first, each with its ``key``."""
        app = self.console_app
        items = [{**a, "key": str(a["id"])} for a in app.approvals.values() if a.get("status") == "pending"]
        items += [{**q, "key": f"q{q['id']}"} for q in app.open_questions]
        return sorted(items, key=lambda a: a.get("created") or 0)

    def _ages(self, approval: dict[str, Any]) -> tuple[str, Text]:
        age = self.console_app.clock() - approval.get("created", 0)
        left = approval.get("timeout_s", 0) - age
        return fmt.duration(age), Text(fmt.duration(max(left, 0)), style="red" if left < 60 else "")

    def render_rows(self) -> None:
        table = self.query_one(DataTable)
        cursor = table.cursor_row
        table.clear()
        pending = self._pending()
        for item in pending:
            age, left = self._ages(item)
            if item["key"].startswith("q"):
                what = Text("asks", style="bold cyan")
                choices = f"  [{' | '.join(item['choices'])}]" if item.get("choices") else ""
                details = f"{item.get('question', '')}{choices}"
            else:
                what = Text(item.get("action", ""), style="bold")
                details = details_text(item.get("details", ""))
            agent = Text(str(item.get("agent", "")))  # text from agents: never markup
            # Questions and approvals are numbered apart (`fleet answer 1` is not `fleet approve 1`):
            # a question's id shows as q1, as its row key does.
            table.add_row(item["key"] if item["key"].startswith("q") else str(item["id"]), agent, what, age,
                          left, Text(details[:200]), key=item["key"])
        if pending:
            table.move_cursor(row=min(cursor, len(pending) - 1))
        title = f" ⚑ Needs you — {len(pending)} pending" if pending else " ⚑ Needs you — nothing pending"
        self.query_one("#approvals-title", Static).update(title)
        self._show_details()
        self.refresh_bindings()

    def update_ages(self) -> None:
        table = self.query_one(DataTable)
        for approval in self._pending():
            key = approval["key"]
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
        if "question" in current:
            choices = "\n " + "  ".join(f"{i}. {c}" for i, c in enumerate(current["choices"], 1)) \
                if current.get("choices") else ""
            detail.update(Text.assemble((f" {current.get('agent')} ", "bold"), "asks: ",
                                        (str(current.get("question")), "bold"), choices, "\n enter: answer"))
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
        """The approval or question under the cursor (a question has a ``question`` key)."""
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        key = str(row_key.value)
        if key.startswith("q"):
            return self.console_app.questions.get(int(key[1:]))
        return self.console_app.approvals.get(int(key))

    def fleet_event(self, kind: str, data: dict[str, Any]) -> None:
        if kind in ("approval", "question", "approvals_changed"):
            self.render_rows()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        current = self.current()
        if action in ("approve", "deny"):
            return current is not None and "question" not in current
        if action == "answer":
            return current is not None and "question" in current
        return True

    def on_data_table_row_selected(self) -> None:
        self.action_answer()

    def action_answer(self) -> None:
        current = self.current()
        if current is not None and "question" in current:
            self.console_app.ask_answer(current)

    def action_approve(self) -> None:
        current = self.current()
        if current is not None and "question" not in current:
            self.console_app.decide(current["id"], True)

    def action_deny(self) -> None:
        current = self.current()
        if current is None or "question" in current:
            return
        approval_id = current["id"]

        def reason(text: str | None) -> None:
            if text is not None:
                self.console_app.decide(approval_id, False, text or "denied by operator")

        self.app.push_screen(
            TextPrompt(f"Deny {current.get('action')} for {current.get('agent')}: reason?", placeholder="reason"),
            reason,
        )
