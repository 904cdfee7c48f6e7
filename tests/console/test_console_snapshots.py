"""SVG snapshots of the main screens at 80x24 and 200x50 (frozen clock, fake fleet).

The fleet is the fake's five agents with one optimiser paused by its budget
(cost today at its cap), nightly-script stopped by the operator and an alert
on anomaly-watch: the table must show why and since when, costs against
budgets and alerts without scrolling at 80 columns.

Update with ``pytest tests/console --snapshot-update`` after checking the
pictures by eye.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from console_helpers import frozen_clock, settle
from fake_client import FakeFleetClient
from textual.pilot import Pilot
from textual.widgets import DataTable

from console.app import FleetConsole
from console.screens.agent import AgentScreen
from console.screens.approvals import ApprovalsScreen
from console.screens.policy import PolicyScreen
from console.widgets.log_view import LogView

SIZES = [(80, 24), (200, 50)]


def make_client() -> FakeFleetClient:
    client = FakeFleetClient(clock=frozen_clock)
    now = frozen_clock()
    client.agents["campaign-optimizer#2"].update(
        state="paused",
        reason="budget exhausted: $2.00 of $2.00 spent today",
        reason_kind="budget",
        since=now - 240.0,
        cost_today_usd=2.0,
        budget_used=1.0,
    )
    client.agents["nightly-script"].update(reason="stopped by operator", reason_kind="operator", since=now - 3700.0)
    return client


def make_app() -> FleetConsole:
    # Toasts in these pictures stay up (conftest.toasts_stay_up): they expire on the wall clock.
    return FleetConsole(make_client(), embedded=True, fleet_name="demo", clock=frozen_clock)


async def ready(pilot: Pilot[Any]) -> None:
    app = pilot.app
    assert isinstance(app, FleetConsole)
    await settle(pilot, lambda: app.fleet_screen.table.row_count == 5)
    view = app.fleet_screen.query_one(LogView)
    await settle(pilot, lambda: view.line_count == 60)


def then(*keys: str, until: Callable[[FleetConsole], bool]) -> Callable[[Pilot[Any]], Awaitable[None]]:
    async def run_before(pilot: Pilot[Any]) -> None:
        await ready(pilot)
        await pilot.press(*keys)
        app = pilot.app
        assert isinstance(app, FleetConsole)
        await settle(pilot, lambda: until(app))

    return run_before


@pytest.mark.parametrize("size", SIZES)
def test_fleet_view(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(make_app(), terminal_size=size, run_before=ready)


@pytest.mark.parametrize("size", SIZES)
def test_fleet_view_paused_and_selected(snap_compare: Any, size: tuple[int, int]) -> None:
    run_before = then(
        "p", "down", "space", until=lambda app: app.fleet_screen.table.state_of("campaign-optimizer#1") == "paused"
    )
    assert snap_compare(make_app(), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_notification_with_brackets(snap_compare: Any, size: tuple[int, int]) -> None:
    """A policy error quoting ``[budget]`` keeps it, and the toast leaves the state column in view."""

    async def run_before(pilot: Pilot[Any]) -> None:
        await ready(pilot)
        app = pilot.app
        assert isinstance(app, FleetConsole)
        message = "unknown key 'usd_per_dya' in [budget]; did you mean 'usd_per_day'?"
        error = {"path": "policies/growth.toml", "line": 3, "col": 1, "message": message}
        client = app.client
        assert isinstance(client, FakeFleetClient)
        client.push("policy_error", {"errors": [error]})
        await settle(pilot, lambda: any("[budget]" in n.message for n in app._notifications))

    assert snap_compare(make_app(), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_agent_detail_paused(snap_compare: Any, size: tuple[int, int]) -> None:
    """The detail view of a budget-paused agent: why, since when, its cost against its budget."""

    async def run_before(pilot: Pilot[Any]) -> None:
        await ready(pilot)
        await pilot.press("j", "enter")
        app = pilot.app
        assert isinstance(app, FleetConsole)
        await settle(pilot, lambda: isinstance(app.screen, AgentScreen))

    assert snap_compare(make_app(), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_agent_detail_policy_tab(snap_compare: Any, size: tuple[int, int]) -> None:
    """The policy tab: where each value comes from stays in view at 80 columns."""

    def loaded(app: FleetConsole) -> bool:
        screen = app.screen
        return isinstance(screen, AgentScreen) and screen.query_one("#policy-table", DataTable).row_count > 0

    assert snap_compare(make_app(), terminal_size=size, run_before=then("enter", "right_square_bracket", until=loaded))


@pytest.mark.parametrize("size", SIZES)
def test_agent_detail(snap_compare: Any, size: tuple[int, int]) -> None:
    def loaded(app: FleetConsole) -> bool:
        return (
            isinstance(app.screen, AgentScreen) and app.screen.query_one("#agent-log", expect_type=object) is not None
        )

    assert snap_compare(make_app(), terminal_size=size, run_before=then("enter", until=loaded))


@pytest.mark.parametrize("size", SIZES)
def test_policy_editor(snap_compare: Any, size: tuple[int, int]) -> None:
    # The picture has TOML highlighting: it needs tree-sitter + tree-sitter-toml.
    pytest.importorskip("tree_sitter_toml", reason="TOML highlighting needs tree-sitter-toml")
    def loaded(app: FleetConsole) -> bool:
        return isinstance(app.screen, PolicyScreen) and app.screen.path == "fleet.toml"

    assert snap_compare(make_app(), terminal_size=size, run_before=then("e", until=loaded))


@pytest.mark.parametrize("size", SIZES)
def test_approvals(snap_compare: Any, size: tuple[int, int]) -> None:
    def loaded(app: FleetConsole) -> bool:
        return isinstance(app.screen, ApprovalsScreen) and app.screen.query_one("DataTable").row_count == 1  # type: ignore[attr-defined]

    assert snap_compare(make_app(), terminal_size=size, run_before=then("a", until=loaded))


def test_help_80x24(snap_compare: Any) -> None:
    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=then("question_mark", until=lambda app: True))


def test_quit_dialog_80x24(snap_compare: Any) -> None:
    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=then("q", until=lambda app: True))
