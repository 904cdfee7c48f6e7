"""Pilot tests of the operator's keys: focus, vi movement, filter, sort, confirmation, search (issue 18).

And of the seams (issue 19): screens are views that never touch the client
or import the app, and the help is made from the bindings.
"""

from __future__ import annotations

import ast
from pathlib import Path

from console_helpers import frozen_clock, settle
from fake_client import FakeFleetClient
from textual.widgets import Input, TabbedContent
from textual.widgets._toast import Toast

from console.app import FleetConsole
from console.keymap import help_text, key_for
from console.screens.agent import AgentScreen
from console.screens.fleet import FleetScreen
from console.screens.modals import ConfirmAction
from console.widgets.agent_table import AgentTable
from console.widgets.footer import FleetFooter
from console.widgets.log_pane import LogPane
from console.widgets.log_view import LogView

FIRST = "campaign-optimizer#1"
SECOND = "campaign-optimizer#2"
CONSOLE = Path(__file__).parents[2] / "console"


def make_app(client: FakeFleetClient) -> FleetConsole:
    return FleetConsole(client, embedded=False, fleet_name="demo", clock=frozen_clock)


def loaded(app: FleetConsole) -> bool:
    return app.fleet_screen.table.row_count == len(app.agents) > 0


def order(app: FleetConsole) -> list[str]:
    return list(app.fleet_screen.table.order)


async def test_tab_moves_the_focus_and_the_focused_pane_is_lit(client: FakeFleetClient) -> None:
    app = make_app(client)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, lambda: loaded(app))
        table = app.fleet_screen.table
        pane = app.fleet_screen.query_one(LogPane)
        assert app.focused is table
        assert table.styles.border_top[0] == "heavy" and pane.styles.border_top[0] == "solid"
        keys = [key for key, _shown, _desc, _enabled in app.fleet_screen.query_one(FleetFooter)._items]
        assert "tab" in keys  # the footer says how to move it
        await pilot.press("tab")
        assert isinstance(app.focused, LogView)
        assert pane.styles.border_top[0] == "heavy" and table.styles.border_top[0] == "solid"
        await pilot.press("shift+tab")
        assert app.focused is table


async def test_vi_keys_move_the_cursor_and_scroll_the_log(client: FakeFleetClient) -> None:
    app = make_app(client)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, lambda: loaded(app))
        table = app.fleet_screen.table
        pane = app.fleet_screen.query_one(LogPane)
        await pilot.press("j")
        assert table.cursor_agent == SECOND and pane.source == SECOND
        await pilot.press("k")
        assert table.cursor_agent == FIRST
        await pilot.press("G")
        assert table.cursor_agent == "nightly-script"
        await pilot.press("g")
        assert table.cursor_agent == FIRST
        view = pane.view
        await settle(pilot, lambda: view.line_count >= 60 and view.scroll_y == view.max_scroll_y)
        await pilot.press("tab", "ctrl+u")
        await settle(pilot, lambda: not pane.follow)
        assert view.scroll_y < view.max_scroll_y
        await pilot.press("G")
        await settle(pilot, lambda: pane.follow)
        await pilot.press("k")
        await settle(pilot, lambda: not pane.follow)


async def test_typing_filters_the_table_by_name_state_or_policy(client: FakeFleetClient) -> None:
    app = make_app(client)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, lambda: loaded(app))
        await pilot.press("backslash")
        box = app.fleet_screen.query_one("#agent-filter", Input)
        assert box.has_focus and box.display
        await pilot.press(*"growth")  # a policy
        await settle(pilot, lambda: order(app) == [FIRST, SECOND])
        box.value = ""
        await pilot.press(*"stopped")  # a state
        await settle(pilot, lambda: order(app) == ["nightly-script"])
        assert app.fleet_screen.query_one(LogPane).source == "nightly-script"
        await pilot.press("enter")  # keep the filter, back to the table
        assert app.focused is app.fleet_screen.table and not box.display
        assert "filter 'stopped' 1/5" in str(app.fleet_screen.table.border_title)
        await pilot.press("escape")  # clears it
        await settle(pilot, lambda: len(order(app)) == 5)
        await pilot.press("backslash", *"tick", "escape")  # esc in the box: cleared and closed
        await settle(pilot, lambda: len(order(app)) == 5 and not box.display)


async def test_filter_follows_state_changes(client: FakeFleetClient) -> None:
    app = make_app(client)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, lambda: loaded(app))
        app.fleet_screen.table.set_filter("paused")
        assert order(app) == []
        client._set_state("ticker", "paused", "paused by operator", "operator")
        await settle(pilot, lambda: order(app) == ["ticker"])


async def test_o_sorts_by_cost_cpu_memory_restarts_state(client: FakeFleetClient) -> None:
    app = make_app(client)
    async with app.run_test(size=(200, 50)) as pilot:
        await settle(pilot, lambda: loaded(app))
        table = app.fleet_screen.table
        fleet_order = order(app)
        await pilot.press("o")
        assert table.sort_key == "cost" and "by cost" in str(table.border_title)
        costs = [client.agents[n]["cost_today_usd"] for n in order(app)]
        assert costs == sorted(costs, reverse=True) and order(app)[0] == "anomaly-watch"
        assert str(table.columns["cost"].label).endswith("▼")
        await pilot.press("o")
        assert table.sort_key == "cpu" and order(app)[0] == "nightly-script"
        await pilot.press("o", "o")
        assert table.sort_key == "restarts"
        restarts = [client.agents[n]["restarts"] for n in order(app)]
        assert restarts == sorted(restarts, reverse=True)
        client._set_state("ticker", "crash-loop", "6 restarts within 60s", "crash-loop")
        await pilot.press("o")
        await settle(pilot, lambda: table.sort_key == "state" and order(app)[0] == "ticker")  # trouble first
        await pilot.press("o")
        assert table.sort_key is None and order(app) == fleet_order
        assert table.cursor_agent == FIRST  # the cursor stays on its agent through re-orders


async def test_stop_asks_naming_the_agent_pause_does_not(client: FakeFleetClient) -> None:
    app = make_app(client)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, lambda: loaded(app))
        await pilot.press("s")
        await settle(pilot, lambda: isinstance(app.screen, ConfirmAction))
        assert "Stop campaign-optimizer#1?" in str(app.screen.query_one(".dialog-title").render())
        assert FIRST in str(app.screen.query_one(".dialog-body").render())
        await pilot.press("n")
        await settle(pilot, lambda: isinstance(app.screen, FleetScreen))
        assert "stop" not in [op for op, _ in client.calls]
        await pilot.press("x")  # one restart goes ahead
        await settle(pilot, lambda: ("restart", {"names": [FIRST]}) in client.calls)
        await pilot.press("p")  # pause never asks
        await settle(pilot, lambda: app.agents[FIRST]["state"] == "paused")
        assert isinstance(app.screen, FleetScreen)


async def test_esc_clears_the_search_then_the_selection(client: FakeFleetClient) -> None:
    app = make_app(client)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, lambda: loaded(app))
        pane = app.fleet_screen.query_one(LogPane)
        await settle(pilot, lambda: pane.view.line_count >= 60)
        await pilot.press("space")
        await pilot.press("slash", *"batch", "enter")
        assert pane.search == "batch" and app.fleet_screen.check_action("log_next", ()) is True
        await pilot.press("escape")
        assert pane.search == "" and app.fleet_screen.table.selected == {FIRST}
        assert app.fleet_screen.check_action("log_next", ()) is False
        await pilot.press("escape")
        assert not app.fleet_screen.table.selected


async def test_next_match_goes_from_where_the_view_is(client: FakeFleetClient) -> None:
    """``n`` while following used to wrap to the oldest match; it goes on from the lines in view."""
    app = make_app(client)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, lambda: loaded(app))
        pane = app.fleet_screen.query_one(LogPane)
        view = pane.view
        client.push_lines(FIRST, [f"needle {i}" if i % 10 == 0 else f"hay {i}" for i in range(200)])
        await settle(pilot, lambda: view.line_count >= 260 and view.scroll_y == view.max_scroll_y)
        await pilot.press("slash", *"needle", "enter")  # the newest match
        newest = view.current_match
        assert newest is not None and "needle 190" in view.lines[newest]
        await pilot.press("f")  # follow again: the view is at the end
        await settle(pilot, lambda: pane.follow and view.scroll_y == view.max_scroll_y)
        await pilot.press("N")
        assert view.current_match is not None and "needle 180" in view.lines[view.current_match]
        assert not pane.follow


async def test_detail_brackets_switch_tabs_and_esc_clears_the_search_first(client: FakeFleetClient) -> None:
    app = make_app(client)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, lambda: loaded(app))
        await pilot.press("enter")
        await settle(pilot, lambda: isinstance(app.screen, AgentScreen))
        screen = app.screen
        tabs = screen.query_one(TabbedContent)
        await pilot.press("right_square_bracket")
        assert tabs.active == "tab-policy"
        await pilot.press("left_square_bracket", "left_square_bracket")
        assert tabs.active == "tab-trends"
        await pilot.press("right_square_bracket")
        assert tabs.active == "tab-logs"
        await pilot.press("slash", *"step", "enter")
        pane = screen.query_one(LogPane)
        assert pane.search == "step"
        await pilot.press("escape")
        assert pane.search == "" and app.screen is screen
        await pilot.press("escape")
        assert isinstance(app.screen, FleetScreen)


async def test_messages_keep_their_brackets(client: FakeFleetClient) -> None:
    """Text from files, agents and users is shown as text: a toast once lost ``[budget]`` to Rich markup."""
    app = make_app(client)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot, lambda: loaded(app))
        message = "unknown key 'usd_per_dya' in [budget]; did you mean 'usd_per_day'?"
        client.push("policy_error", {"errors": [{"path": "policies/growth.toml", "line": 3, "col": 1,
                                                 "message": message}]})  # fmt: skip
        client.push_lines("ticker", ["[bold]not bold[/bold] [link=x]y"])
        client.push("stats", {"agents": [client.agents["ticker"]]})
        await settle(pilot, lambda: bool(app.screen.query(Toast)))
        shown = " ".join(str(toast.render()) for toast in app.screen.query(Toast))
        assert "[budget]" in shown.replace("\n", " ")
        table = app.fleet_screen.table
        await settle(pilot, lambda: "[bold]" in str(table.get_cell("ticker", "last")))


async def test_header_shows_the_version_the_fleet_reports() -> None:
    client = FakeFleetClient(clock=frozen_clock)
    client.policy_version = 0  # asked before the fleet recorded its first version
    app = make_app(client)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, lambda: loaded(app))
        info = app.fleet_screen.query_one("#fleet-info")
        assert "policy v0" not in str(info.render())
        client.push("stats", {"agents": [], "gateway": "ready", "policy_version": 1})
        await settle(pilot, lambda: "policy v1" in str(info.render()))


async def test_columns_fit_the_width(client: FakeFleetClient) -> None:
    app = make_app(client)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, lambda: loaded(app))
        table = app.fleet_screen.table
        keys = [c.key for c in table.columns_shown]
        assert keys == ["name", "state", "uptime", "cost", "alerts", "last"]
        assert sum(c.get_render_width(table) for c in table.columns.values()) <= 80
        await pilot.resize_terminal(200, 50)
        await settle(pilot, lambda: len(table.columns_shown) > 6)
        keys = [c.key for c in table.columns_shown]
        extras = ["cpu", "mem", "tokens", "restarts", "budget"]  # in this order, before the last line
        assert keys == ["name", "state", "uptime", "cost", "alerts", *extras, "last"]


def test_help_and_palette_hints_come_from_the_bindings() -> None:
    text = help_text().plain
    for binding in FleetScreen.BINDINGS:
        assert (binding.tooltip or binding.description) in text, binding
    for binding in AgentTable.BINDINGS:  # j/k, g/G, ctrl+d/u, space
        assert binding.key.rpartition("+")[2] in text, binding
    assert key_for("all('pause')") == "P" and key_for("filter_agents") == "\\" and key_for("help") == "?"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_screens_are_views_without_import_circles() -> None:
    """Only the app calls the client; nothing the app imports imports the app back."""
    for path in CONSOLE.rglob("*.py"):
        if path.name in ("app.py", "__init__.py"):
            continue
        assert "console.app" not in _imports(path), f"{path} imports console.app"
        assert ".client" not in path.read_text(), f"{path} reaches the client"
