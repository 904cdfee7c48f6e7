"""Pilot tests: every key action and screen of the console against the fake fleet."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from console_helpers import frozen_clock, settle
from fake_client import FakeFleetClient
from textual.command import CommandList, CommandPalette
from textual.widgets import DataTable, Input, OptionList, Sparkline, TabbedContent

from console import format as fmt
from console.app import FleetConsole
from console.commands import FleetCommands
from console.keymap import help_sections
from console.logring import MERGED, Block
from console.screens.agent import AgentScreen
from console.screens.approvals import ApprovalsScreen
from console.screens.events import EventsScreen
from console.screens.fleet import FleetScreen
from console.screens.help import HelpScreen
from console.screens.modals import ChoicePrompt, ConfirmAction, ConfirmQuit, TextPrompt
from console.screens.policy import PolicyEditor, PolicyScreen
from console.screens.send_input import SendInput
from console.widgets.footer import FleetFooter
from console.widgets.log_pane import LogPane
from console.widgets.log_view import LogView

FIRST = "campaign-optimizer#1"
SECOND = "campaign-optimizer#2"


def make_app(client: FakeFleetClient, *, embedded: bool = True) -> FleetConsole:
    return FleetConsole(client, embedded=embedded, fleet_name="demo", clock=frozen_clock)


def loaded(app: FleetConsole) -> bool:
    return app.fleet_screen.table.row_count == len(app.agents) > 0


def state(app: FleetConsole, name: str) -> str | None:
    return app.fleet_screen.table.state_of(name)


def notes(app: FleetConsole) -> list[str]:
    return [n.message for n in app._notifications]


async def test_first_paint_does_not_wait_for_the_client() -> None:
    client = FakeFleetClient(clock=frozen_clock, call_delay=5.0)  # a fleet still importing litellm
    app = make_app(client)
    started = time.perf_counter()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, FleetScreen)
        assert "connecting" in str(app.screen.query_one("#fleet-info").render())
        assert time.perf_counter() - started < 0.5 + 0.5  # generous for CI; the bench measures it
        assert app.fleet_screen.table.row_count == 0


async def test_table_shows_agents_and_state_symbols(client: FakeFleetClient) -> None:
    app = make_app(client)
    async with app.run_test(size=(120, 35)) as pilot:
        await settle(pilot, lambda: loaded(app))
        table = app.fleet_screen.table
        assert str(table.get_cell(FIRST, "state")) == "● running"
        assert str(table.get_cell("nightly-script", "state")) == "■ stopped 50m"  # since when
        assert "approval" in str(app.screen.query_one("#approvals-badge").render())


async def test_pause_and_resume_cursor_row(client: FakeFleetClient) -> None:
    app = make_app(client)
    async with app.run_test(size=(120, 35)) as pilot:
        await settle(pilot, lambda: loaded(app))
        await pilot.press("p")
        await settle(pilot, lambda: state(app, FIRST) == "paused")
        assert ("pause", {"names": [FIRST]}) in client.calls
        assert any("Pausing" in n for n in notes(app))
        assert str(app.fleet_screen.table.get_cell(FIRST, "state")) == "‖ paused by you 0s"  # why, since when
        await pilot.press("r")
        await settle(pilot, lambda: state(app, FIRST) == "running")


async def test_check_action_hides_inapplicable_keys(client: FakeFleetClient) -> None:
    app = make_app(client)
    async with app.run_test(size=(120, 35)) as pilot:
        await settle(pilot, lambda: loaded(app))
        screen = app.fleet_screen
        assert screen.check_action("agents", ("pause",)) is True
        assert screen.check_action("agents", ("resume",)) is False
        await pilot.press("p")
        await settle(pilot, lambda: state(app, FIRST) == "paused")
        assert screen.check_action("agents", ("pause",)) is False
        assert screen.check_action("agents", ("resume",)) is True
        assert screen.check_action("log_next", ()) is False


async def test_pause_all_and_resume_all(client: FakeFleetClient) -> None:
    app = make_app(client)
    async with app.run_test(size=(120, 35)) as pilot:
        await settle(pilot, lambda: loaded(app))
        await pilot.press("P")
        running = [n for n, a in client.agents.items() if n != "nightly-script"]
        await settle(pilot, lambda: all(state(app, n) == "paused" for n in running))
        assert ("pause", {"all": True}) in client.calls
        await pilot.press("R")
        await settle(pilot, lambda: all(state(app, n) == "running" for n in running))


async def test_multi_select_acts_on_selection(client: FakeFleetClient) -> None:
    app = make_app(client)
    async with app.run_test(size=(120, 35)) as pilot:
        await settle(pilot, lambda: loaded(app))
        await pilot.press("space", "space")  # selects rows 1 and 2, cursor moves down
        assert app.fleet_screen.table.selected == {FIRST, SECOND}
        await pilot.press("x")  # two agents: asks first, naming them
        await settle(pilot, lambda: isinstance(app.screen, ConfirmAction))
        assert FIRST in str(app.screen.query_one(".dialog-body").render())
        await pilot.press("y")
        await settle(pilot, lambda: client.agents[SECOND]["restarts"] == 2)
        assert ("restart", {"names": [FIRST, SECOND]}) in client.calls
        assert client.agents["anomaly-watch"]["restarts"] == 2  # untouched (index 2 % 3)
        await pilot.press("escape")
        assert not app.fleet_screen.table.selected


async def test_stop_start_toggle(client: FakeFleetClient) -> None:
    app = make_app(client)
    async with app.run_test(size=(120, 35)) as pilot:
        await settle(pilot, lambda: loaded(app))
        await pilot.press("s")  # stopping a running agent asks first
        await settle(pilot, lambda: isinstance(app.screen, ConfirmAction))
        await pilot.press("y")
        await settle(pilot, lambda: state(app, FIRST) == "stopped")
        await pilot.press("s")
        await settle(pilot, lambda: state(app, FIRST) == "running")
        assert [op for op, _ in client.calls if op in ("stop", "start")] == ["stop", "start"]


async def test_failed_action_is_reported(client: FakeFleetClient) -> None:
    app = make_app(client)
    async with app.run_test(size=(120, 35)) as pilot:
        await settle(pilot, lambda: loaded(app))
        app.agent_op("stop", ["nightly-script"])
        await settle(pilot, lambda: any("stop failed" in n for n in notes(app)))


async def test_crash_state_notifies(client: FakeFleetClient) -> None:
    app = make_app(client)
    async with app.run_test(size=(120, 35)) as pilot:
        await settle(pilot, lambda: loaded(app))
        client._set_state("ticker", "crash-loop", "5 restarts in 300s")
        await settle(pilot, lambda: state(app, "ticker") == "crash-loop")
        assert any("crash-loop" in n for n in notes(app))
        assert str(app.fleet_screen.table.get_cell("ticker", "state")) == "⟳ crash-loop 0s"


async def test_live_logs_reach_the_visible_pane_in_batches(client: FakeFleetClient) -> None:
    app = make_app(client)
    async with app.run_test(size=(120, 35)) as pilot:
        await settle(pilot, lambda: loaded(app))
        view = app.screen.query_one(LogView)
        await settle(pilot, lambda: view.source == FIRST and view.line_count >= 60)
        client.push_lines(FIRST, [f"live {i} \x1b[2J\x1b]0;title\x07\x1b[32mgreen\x1b[0m" for i in range(300)])
        client.push_lines(SECOND, ["other agent"] * 10)
        await settle(pilot, lambda: any("live 299" in line for line in view.lines))
        assert not any("other agent" in line for line in view.lines)
        last = view.lines[-1]
        assert "\x1b[2J" not in last and "title" not in last and "\x1b[32m" in last
        assert view.scroll_y == view.max_scroll_y  # following


async def test_hidden_pane_is_not_fed_and_replays(client: FakeFleetClient) -> None:
    app = make_app(client)
    async with app.run_test(size=(120, 35)) as pilot:
        await settle(pilot, lambda: loaded(app))
        view = app.fleet_screen.query_one(LogView)
        await pilot.press("enter")
        await settle(pilot, lambda: isinstance(app.screen, AgentScreen))
        assert not view.active
        client.push_lines(FIRST, ["while hidden"])
        await settle(pilot, lambda: app.hub.ring(FIRST).blocks[-1].lines == ["while hidden"])
        assert not view._pending
        await pilot.press("escape")
        await settle(pilot, lambda: isinstance(app.screen, FleetScreen) and view.active)
        await settle(pilot, lambda: view.lines and view.lines[-1] == "while hidden")


async def test_merged_view_toggle(client: FakeFleetClient) -> None:
    app = make_app(client)
    async with app.run_test(size=(120, 35)) as pilot:
        await settle(pilot, lambda: loaded(app))
        pane = app.screen.query_one(LogPane)
        await pilot.press("m")
        assert pane.source == MERGED
        client.push_lines("ticker", ["from ticker"])
        await settle(pilot, lambda: any("from ticker" in line for line in pane.view.lines))
        assert "ticker" in pane.view.lines[-1].split("│")[0]
        await pilot.press("m")
        assert pane.source == FIRST


async def test_follow_search_wrap_timestamps(client: FakeFleetClient) -> None:
    app = make_app(client)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, lambda: loaded(app))
        pane = app.screen.query_one(LogPane)
        view = pane.view
        await settle(pilot, lambda: view.line_count >= 60)
        await pilot.press("f")
        assert not pane.follow
        client.push_lines(FIRST, ["not followed"] * 50)
        await settle(pilot, lambda: "not followed" in view.lines[-1])
        assert view.scroll_y < view.max_scroll_y
        await pilot.press("f")
        await settle(pilot, lambda: view.scroll_y == view.max_scroll_y)

        await pilot.press("slash")
        search = pane.query_one("#log-search", Input)
        assert search.has_focus
        await pilot.press(*"batch 1", "enter")
        assert pane.search == "batch 1"
        assert not pane.follow
        first = view.current_match
        assert first is not None and "batch 1" in view.lines[first]
        await pilot.press("n")
        assert view.current_match != first
        await pilot.press("N")
        assert view.current_match == first

        long = "x" * 200
        client.push_lines(FIRST, [long])
        await settle(pilot, lambda: long in view.lines)
        rows = len(view.lines)
        await pilot.press("w")
        await settle(pilot, lambda: len(view.lines) > rows)
        assert long not in view.lines
        await pilot.press("w", "t")
        await settle(pilot, lambda: view.lines[-1].startswith("\x1b[2m"))


async def test_user_scroll_up_pauses_follow_and_loads_history() -> None:
    client = FakeFleetClient(clock=frozen_clock, history=1200)
    app = make_app(client)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, lambda: loaded(app))
        pane = app.screen.query_one(LogPane)
        view = pane.view
        await settle(pilot, lambda: view.line_count == 500)
        view.focus()
        await pilot.press("home")
        await settle(
            pilot,
            lambda: ("logs", {"agent": FIRST, "n": 500, "before_seq": 700}) in client.calls and view.line_count >= 1000,
        )
        assert not pane.follow
        assert app.hub.ring(FIRST).first_seq in (0, 200)
        await pilot.press("end")
        await settle(pilot, lambda: pane.follow)


async def test_filter_by_stream(client: FakeFleetClient) -> None:
    app = make_app(client)
    async with app.run_test(size=(120, 35)) as pilot:
        await settle(pilot, lambda: loaded(app))
        pane = app.screen.query_one(LogPane)
        await pilot.press("F")
        await settle(pilot, lambda: app.screen.__class__.__name__ == "FilterPrompt")
        app.screen.query_one("#stream").value = "sdk"
        app.screen.query_one("#text", Input).focus()
        await pilot.press("enter")
        await settle(pilot, lambda: pane.filter.streams == frozenset({"sdk"}))
        assert pane.view.lines and all("INFO" in line for line in pane.view.lines)


async def test_agent_detail_screen(client: FakeFleetClient) -> None:
    app = make_app(client)
    async with app.run_test(size=(120, 35)) as pilot:
        await settle(pilot, lambda: loaded(app))
        await pilot.press("enter")
        await settle(pilot, lambda: isinstance(app.screen, AgentScreen))
        screen = app.screen
        assert "goal: Keep campaign-optimizer healthy" in str(screen.query_one("#agent-goal").render())
        # The other tabs load when first shown, not while the operator waits for the logs.
        await settle(pilot)
        assert not {op for op, _ in client.calls} & {"policy_show", "usage", "metrics"}
        tabs = screen.query_one(TabbedContent)
        tabs.active = "tab-policy"
        await settle(pilot, lambda: screen.query_one("#policy-table", DataTable).row_count > 0)
        policy = screen.query_one("#policy-table", DataTable)
        keys = [str(policy.get_row_at(i)[0]) for i in range(policy.row_count)]
        assert "budget.usd_per_day" in keys
        tabs.active = "tab-calls"
        await settle(pilot, lambda: screen.query_one("#calls-table", DataTable).row_count == 8)
        tabs.active = "tab-trends"
        await settle(pilot, lambda: len(screen.query("#custom-metrics Sparkline")) == 1)
        tokens = screen.query_one("#spark-tokens", Sparkline).data or []
        assert len(tokens) == 30 and sum(tokens) > 0
        assert "queue_depth" in str(screen.query_one("#custom-metrics Label").render())
        client.push("usage", {"agent": FIRST, "model": "m", "tokens_in": 1, "tokens_out": 2, "cost_usd": 0.1,
                              "latency_s": 0.2, "outcome": "ok"})  # fmt: skip
        await settle(pilot, lambda: screen.query_one("#calls-table", DataTable).row_count == 9)
        tabs.active = "tab-logs"
        await settle(pilot)
        await pilot.press("p")
        await settle(pilot, lambda: app.agents[FIRST]["state"] == "paused")
        assert "paused" in str(screen.query_one("#agent-head").render())
        log_view = screen.query_one("#agent-log", LogPane).view
        assert log_view.active
        screen.query_one(TabbedContent).active = "tab-policy"
        await settle(pilot, lambda: not log_view.active)  # hidden tab: not fed
        screen.query_one(TabbedContent).active = "tab-logs"
        await settle(pilot, lambda: log_view.active)
        await pilot.press("escape")
        await settle(pilot, lambda: isinstance(app.screen, FleetScreen))


async def test_detail_screens_are_kept_for_a_quick_return(client: FakeFleetClient) -> None:
    """Reopening an agent reuses its screen, which catches up with what it missed; only a few are kept."""
    from console.app import DETAIL_SCREENS

    app = make_app(client)
    async with app.run_test(size=(120, 35)) as pilot:
        await settle(pilot, lambda: loaded(app))
        await pilot.press("enter")
        await settle(pilot, lambda: isinstance(app.screen, AgentScreen))
        first = app.screen
        first.query_one(TabbedContent).active = "tab-policy"
        await settle(pilot, lambda: first.query_one("#policy-table", DataTable).row_count > 0)
        await pilot.press("escape")
        await settle(pilot, lambda: isinstance(app.screen, FleetScreen))
        client._set_state(FIRST, "paused")  # happens while its screen is away
        await settle(pilot, lambda: app.agents[FIRST]["state"] == "paused")
        shows = sum(op == "policy_show" for op, _ in client.calls)
        await pilot.press("enter")
        # The kept screen is back at once; its header is redrawn once it has caught up.
        await settle(pilot, lambda: app.screen is first and bool(first.query("#agent-head")))
        await settle(pilot, lambda: "paused" in str(first.query_one("#agent-head").render()))
        assert sum(op == "policy_show" for op, _ in client.calls) == shows + 1  # the shown tab reloaded
        await pilot.press("escape")
        for _ in range(DETAIL_SCREENS):  # open as many others: the first one is let go
            await pilot.press("down", "enter")
            await settle(pilot, lambda: isinstance(app.screen, AgentScreen) and app.screen is not first)
            await pilot.press("escape")
            await settle(pilot, lambda: isinstance(app.screen, FleetScreen))
        assert not first.is_attached
        assert len(app._detail_screens) == DETAIL_SCREENS


async def until(pilot: object, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Pump the app until ``predicate()`` holds (for what a timer of the app starts)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await pilot.pause(0.02)  # type: ignore[attr-defined]


async def test_the_detail_of_the_agent_under_a_resting_cursor_is_built_ahead(client: FakeFleetClient) -> None:
    """The cursor rests on an agent: its detail screen is composed and laid out, unseen and unfed; enter shows it."""
    app = make_app(client)
    async with app.run_test(size=(120, 35)) as pilot:
        await settle(pilot, lambda: loaded(app))

        def spare(name: str) -> AgentScreen | None:
            screen = app._spare_detail
            return screen if screen is not None and screen.agent == name else None

        def laid_out(name: str) -> bool:
            screen = spare(name)
            return screen is not None and screen.is_mounted and screen.query_one("#agent-head").size.width > 0

        await until(pilot, lambda: laid_out(FIRST))
        first = spare(FIRST)
        assert first is not None and isinstance(app.screen, FleetScreen)
        assert not first.query_one("#agent-log", LogPane).view.active  # not shown, so not fed
        await pilot.press("enter")
        await settle(pilot, lambda: app.screen is first)
        assert first.query_one("#agent-log", LogPane).view.active
        assert FIRST in str(first.query_one("#agent-head").render())
        assert app._spare_detail is None and f"agent:{FIRST}" in app._detail_screens  # now a kept screen
        await pilot.press("escape")
        await settle(pilot, lambda: isinstance(app.screen, FleetScreen))
        # Resting on the next agent prepares it; moving on drops it (one built ahead at most).
        await pilot.press("down")
        await until(pilot, lambda: laid_out(SECOND))
        second = spare(SECOND)
        await pilot.press("down")
        await until(pilot, lambda: app._spare_detail not in (None, second))
        assert second is not None
        await until(pilot, lambda: not second.is_attached)
        assert f"agent:{SECOND}" not in app._installed_screens
        assert first.is_attached  # the kept screen stays


async def test_a_quick_enter_after_the_cursor_moved_on_shows_the_prepared_screen_retargeted(
    client: FakeFleetClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Prepared for the row the cursor rested on; the operator moves on and presses enter at once."""
    import console.screens.fleet as fleet_screen

    app = make_app(client)
    async with app.run_test(size=(120, 35)) as pilot:
        await settle(pilot, lambda: loaded(app))
        await until(pilot, lambda: app._spare_detail is not None and app._spare_ready)
        prepared = app._spare_detail
        assert prepared is not None and prepared.agent == FIRST
        monkeypatch.setattr(fleet_screen, "PREPARE_REST_S", 60.0)  # the cursor does not rest again
        await pilot.press("down", "enter")
        await settle(pilot, lambda: isinstance(app.screen, AgentScreen))
        assert app.screen is prepared and prepared.agent == SECOND
        assert SECOND in str(prepared.query_one("#agent-head").render())
        pane = prepared.query_one("#agent-log", LogPane)
        assert pane.source == SECOND and pane.view.active
        assert f"agent:{FIRST}" not in app._installed_screens and app._spare_detail is None


async def test_footer_shows_what_applies_redraws_on_change_and_presses_on_click(client: FakeFleetClient) -> None:
    app = make_app(client)
    async with app.run_test(size=(120, 35)) as pilot:
        await settle(pilot, lambda: loaded(app))
        footer = app.screen.query_one(FleetFooter)
        keys = {key: enabled for key, _shown, _desc, enabled in footer._items}
        assert keys["p"] and not keys.get("r", False)  # a running agent: pause applies, resume does not
        shown = footer._items
        app.screen.refresh_bindings()  # nothing changed: the footer keeps what it drew
        await settle(pilot)
        assert footer._items is shown
        start = next(start for start, _end, key, _on in footer._spans if key == "p")
        await pilot.click(FleetFooter, offset=(start, 0))  # a click on the key presses it
        await settle(pilot, lambda: app.agents[FIRST]["state"] == "paused")
        keys = {key: enabled for key, _shown, _desc, enabled in footer._items}
        assert keys["r"] and not keys.get("p", False)
        assert "Resume" in str(footer.render())


async def test_i_is_in_the_footer_while_the_agent_waits_and_in_the_help(client: FakeFleetClient) -> None:
    app = make_app(client)
    async with app.run_test(size=(120, 35)) as pilot:
        await settle(pilot, lambda: loaded(app))
        footer = app.screen.query_one(FleetFooter)
        assert app.agents[FIRST]["state"] == "running" and app.agents[FIRST]["kind"] != "command"
        assert "i" not in {key for key, *_ in footer._items}  # nothing to answer: the footer stays short
        client._later((FIRST, "waiting"))
        await settle(pilot, lambda: any(key == "i" for key, *_ in footer._items))
        keys = [key for key, *_ in footer._items]
        assert keys.index("i") < keys.index("p") and "i Answer" in str(footer.render())  # before the agent keys
        await pilot.press("enter")
        await settle(pilot, lambda: isinstance(app.screen, AgentScreen))
        detail_footer = app.screen.query_one(FleetFooter)
        await settle(pilot, lambda: "i Answer" in str(detail_footer.render()))
        await pilot.press("i")  # the shown key does what the hidden one did: asks for the text
        await settle(pilot, lambda: isinstance(app.screen, SendInput))
        await pilot.press("escape")
        await settle(pilot, lambda: isinstance(app.screen, AgentScreen))
        client._later((FIRST, "running"))
        await settle(pilot, lambda: "Answer" not in str(detail_footer.render()))
    assert any(keys == "i" and "input" in what for _title, rows in help_sections() for keys, what in rows)


async def test_quick_budget_and_model(client: FakeFleetClient) -> None:
    """A replica's quick edit names its scope and writes exactly that; keyless models are marked and refused."""
    client.unavailable = {"anthropic/claude-3-5-haiku": "no ANTHROPIC_API_KEY set (fleet environment or .env)"}
    app = make_app(client)
    async with app.run_test(size=(120, 35)) as pilot:
        await settle(pilot, lambda: loaded(app))
        await pilot.press("b")
        await settle(pilot, lambda: isinstance(app.screen, ChoicePrompt))
        scope = app.screen.query_one(OptionList)
        assert "campaign-optimizer#1: this replica only" in str(scope.get_option_at_index(0).prompt)
        assert "campaign-optimizer: the group (2 replicas)" in str(scope.get_option_at_index(1).prompt)
        await pilot.press("enter")  # this replica
        await settle(pilot, lambda: isinstance(app.screen, TextPrompt))
        prompt = app.screen.query_one(Input)
        assert prompt.value == "2.0"
        prompt.value = "5"
        await pilot.press("enter")
        await settle(pilot, lambda: (FIRST, "budget.usd_per_day") in client.overrides)
        assert client.overrides == {(FIRST, "budget.usd_per_day"): 5.0}  # not the group
        await settle(pilot, lambda: any("policy v4 applied" in n for n in notes(app)))
        await pilot.press("M")
        await settle(pilot, lambda: isinstance(app.screen, ChoicePrompt))
        await pilot.press("j", "enter")  # the group
        await settle(pilot, lambda: isinstance(app.screen, ChoicePrompt) and "Model for" in app.screen.title_text)
        models = app.screen.query_one(OptionList)
        assert "no ANTHROPIC_API_KEY" in str(models.get_option_at_index(2).prompt)
        await pilot.press("G", "enter")  # the keyless one: refused with the reason, the list stays
        await settle(pilot, lambda: any("no ANTHROPIC_API_KEY" in n for n in notes(app)))
        assert isinstance(app.screen, ChoicePrompt)
        await pilot.press("k", "enter")
        await settle(pilot, lambda: client.overrides.get(("campaign-optimizer", "llm.model")) == "gpt-4o-mini")
        assert (FIRST, "llm.model") not in client.overrides


async def test_budget_raise_offers_to_resume_a_budget_paused_agent(client: FakeFleetClient) -> None:
    paused_by_budget = {"state": "paused", "reason": "budget exhausted: $2.00 of $2.00", "reason_kind": "budget"}
    client.agents["anomaly-watch"].update(paused_by_budget)
    app = make_app(client)
    async with app.run_test(size=(120, 35)) as pilot:
        await settle(pilot, lambda: loaded(app))
        app.fleet_screen.table.move_cursor(row=2)
        await pilot.press("b")
        await settle(pilot, lambda: isinstance(app.screen, TextPrompt))
        app.screen.query_one(Input).value = "4"
        await pilot.press("enter")
        await settle(pilot, lambda: isinstance(app.screen, ConfirmAction))
        assert "Resume anomaly-watch?" in str(app.screen.query_one(".dialog-title").render())
        await pilot.press("y")
        await settle(pilot, lambda: state(app, "anomaly-watch") == "running")


async def test_policy_editor_validates_and_saves(client: FakeFleetClient) -> None:
    app = make_app(client)
    async with app.run_test(size=(120, 35)) as pilot:
        await settle(pilot, lambda: loaded(app))
        await pilot.press("e")
        await settle(pilot, lambda: isinstance(app.screen, PolicyScreen))
        screen = app.screen
        assert isinstance(screen, PolicyScreen)
        await settle(pilot, lambda: screen.path == "fleet.toml")
        files = screen.query_one(OptionList)
        files.highlighted = 2
        files.action_select()
        await settle(pilot, lambda: screen.path == "policies/ops.toml")
        editor = screen.query_one(PolicyEditor)
        assert editor.language == "toml"
        editor.text = editor.text + "\n[bogus\n"
        await settle(pilot, lambda: bool(screen.errors))  # debounced policy_check
        assert editor.error_line == 14
        assert "✖ 14:" in str(screen.query_one("#policy-status").render())
        editor.text = editor.text.replace("[bogus\n", '[alerts]\naction = "notify"\n')
        await settle(pilot, lambda: not screen.errors and editor.error_line is None)
        await pilot.press("ctrl+s")
        await settle(pilot, lambda: any("policy v4 applied" in n for n in notes(app)))
        assert "[alerts]" in client.policy_files["policies/ops.toml"]
        assert "v4 applied" in str(screen.query_one("#policy-status").render())


async def test_policy_error_event_is_shown(client: FakeFleetClient) -> None:
    app = make_app(client)
    async with app.run_test(size=(120, 35)) as pilot:
        await settle(pilot, lambda: loaded(app))
        client.push("policy_error", {"errors": [{"path": "fleet.toml", "line": 2, "col": 1, "message": "bad"}]})
        await settle(pilot, lambda: any("fleet.toml:2:1: bad" in n for n in notes(app)))


async def test_approvals_approve_and_deny(client: FakeFleetClient) -> None:
    second = client.add_approval("ticker", "publish_post", {"title": "hello"}, timeout_s=30)
    app = make_app(client)
    async with app.run_test(size=(120, 35)) as pilot:
        await settle(pilot, lambda: loaded(app) and app.pending_approvals == 2)
        assert "2 approvals" in str(app.screen.query_one("#approvals-badge").render())
        await pilot.press("a")
        await settle(pilot, lambda: isinstance(app.screen, ApprovalsScreen))
        table = app.screen.query_one(DataTable)
        await settle(pilot, lambda: table.row_count == 2)
        assert str(table.get_cell("1", "age")) == "1m00s"
        await pilot.press("y")
        await settle(pilot, lambda: client.approvals[1]["status"] == "approved" and table.row_count == 1)
        await pilot.press("n")
        await settle(pilot, lambda: isinstance(app.screen, TextPrompt))
        await pilot.press(*"not today", "enter")
        await settle(pilot, lambda: client.approvals[second]["status"] == "denied")
        assert client.approvals[second]["reason"] == "not today"
        await settle(pilot, lambda: table.row_count == 0 and app.pending_approvals == 0)
        await pilot.press("escape")
        assert not app.fleet_screen.query_one("#approvals-badge").has_class("-pending")


async def test_new_approval_notifies(client: FakeFleetClient) -> None:
    app = make_app(client)
    async with app.run_test(size=(120, 35)) as pilot:
        await settle(pilot, lambda: loaded(app))
        client.add_approval("ticker", "send_email", {"to": "x"})
        await settle(pilot, lambda: app.pending_approvals == 2)
        assert any("ticker asks to send_email" in n for n in notes(app))


async def test_alerts_notify_and_events_screen(client: FakeFleetClient) -> None:
    app = make_app(client)
    async with app.run_test(size=(120, 35)) as pilot:
        await settle(pilot, lambda: loaded(app))
        client.push(
            "alert", {"agent": "ticker", "rule": "stalled", "message": "no output for 600s", "severity": "warning"}
        )
        await settle(pilot, lambda: any("no output for 600s" in n for n in notes(app)))
        await pilot.press("E")
        await settle(pilot, lambda: isinstance(app.screen, EventsScreen) and app.events_loaded)
        table = app.screen.query_one(DataTable)
        await settle(pilot, lambda: table.row_count == 3)
        whats = [str(table.get_row_at(i)[3]) for i in range(table.row_count)]
        assert whats[0].startswith("error_rate") and whats[-1] == "stalled: no output for 600s"


async def test_help_screen(client: FakeFleetClient) -> None:
    app = make_app(client)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert isinstance(app.screen, FleetScreen)


async def test_command_palette_lists_agent_actions(client: FakeFleetClient) -> None:
    app = make_app(client)
    async with app.run_test(size=(120, 35)) as pilot:
        await settle(pilot, lambda: loaded(app))
        provider = FleetCommands(app.screen)
        texts = [hit.text async for hit in provider.discover()]
        assert "Pause anomaly-watch" in texts
        assert "Restart ticker" in texts
        assert "Start nightly-script" in texts and "Pause nightly-script" not in texts
        hits = [hit async for hit in provider.search("restart tick")]
        assert hits and hits[0].text == "Restart ticker"
        await pilot.press("ctrl+p")
        await settle(pilot, lambda: isinstance(app.screen, CommandPalette))
        await pilot.press(*"Pause ticker")
        await settle(pilot, lambda: app.screen.query_one(CommandList).option_count > 0)
        await pilot.press("enter")
        await settle(pilot, lambda: state(app, "ticker") == "paused")


async def test_quit_embedded_asks_then_shuts_down(client: FakeFleetClient) -> None:
    app = make_app(client, embedded=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, lambda: loaded(app))
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmQuit)
        assert app.screen.focused is not None and app.screen.focused.id == "stop"  # it started the fleet
        await pilot.press("escape")
        assert isinstance(app.screen, FleetScreen) and not client.shut_down
        await pilot.press("q")
        await pilot.click("#stop")
        await settle(pilot, lambda: client.shut_down)
    assert client.shut_down


async def test_quit_attached_asks_and_detaches_by_default(client: FakeFleetClient) -> None:
    app = make_app(client, embedded=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, lambda: loaded(app))
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmQuit)
        assert app.screen.focused is not None and app.screen.focused.id == "detach"
        await pilot.press("enter")
        await settle(pilot, lambda: not app.is_running)
    assert not client.shut_down
    assert "shutdown" not in [op for op, _ in client.calls]


@pytest.mark.parametrize("keys", [("ctrl+c", "d"), ("q", "q"), ("ctrl+c", "ctrl+c")])
async def test_ctrl_c_asks_like_q_and_a_second_press_detaches(client: FakeFleetClient, keys: tuple[str, str]) -> None:
    app = make_app(client, embedded=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, lambda: loaded(app))
        await pilot.press(keys[0])
        assert isinstance(app.screen, ConfirmQuit)
        await pilot.press(keys[1])
        await settle(pilot, lambda: not app.is_running)
    assert not client.shut_down


async def test_quit_dialog_names_the_agents_and_the_way_back(client: FakeFleetClient) -> None:
    app = make_app(client, embedded=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, lambda: loaded(app))
        await pilot.press("q")
        dialog = app.screen
        assert isinstance(dialog, ConfirmQuit)
        text = " ".join(str(label.render()) for label in dialog.query("Label"))
        running = sum(1 for a in client.agents.values() if a["state"] not in ("stopped", "exited", "crashed"))
        assert f"{running} agent" in text and "`fleet`" in text and "Detach" in text
        for label in dialog.query("Label"):  # nothing cut off at 80 columns: every line fits the dialog
            assert label.size.width <= dialog.query_one(".quit-dialog").content_region.width
            assert label.virtual_size.width <= label.size.width


async def test_quit_dialog_counts_paused_and_stopped_agents_apart(client: FakeFleetClient) -> None:
    app = make_app(client, embedded=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, lambda: loaded(app))
        names = [n for n, a in client.agents.items() if a["state"] == "running"]
        assert len(names) >= 4, names
        client._later((names[0], "paused"), (names[1], "pausing"), (names[2], "stopped"))
        await settle(pilot, lambda: app.agents[names[2]].get("state") == "stopped")
        running = len(names) - 3
        await pilot.press("q")
        dialog = app.screen
        assert isinstance(dialog, ConfirmQuit)
        text = " ".join(str(label.render()) for label in dialog.query("Label"))
        stopped = sum(1 for a in client.agents.values() if a["state"] in ("stopped", "exited", "crashed"))
        want = f"{running} agent{'s' if running != 1 else ''} {'is' if running == 1 else 'are'} running; 2 paused"
        assert f"{want}, {stopped} stopped." in text, text
        await pilot.press("d")
        await settle(pilot, lambda: not app.is_running)


async def test_live_stats_update_cells() -> None:
    client = FakeFleetClient(clock=frozen_clock)
    app = make_app(client)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot, lambda: loaded(app))
        client.agents["ticker"].update(cpu_pct=88.0, last_line="\x1b[31mbusy\x1b[0m\x07")
        client.push("stats", {"agents": [dict(a) for a in client.agents.values()]})
        await settle(pilot, lambda: app.fleet_screen.table.get_cell("ticker", "cpu") == "88.0")
        assert str(app.fleet_screen.table.get_cell("ticker", "last")) == "busy␇"


async def test_header_follows_the_gateway_state_from_stats() -> None:
    client = FakeFleetClient(clock=frozen_clock)
    client.gateway = "idle"
    app = make_app(client)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot, lambda: loaded(app))
        info = app.fleet_screen.query_one("#fleet-info")
        assert "gateway idle" in str(info.render())
        client.push("stats", {"agents": [dict(a) for a in client.agents.values()], "gateway": "ready"})
        await settle(pilot, lambda: "gateway ready" in str(info.render()))


async def test_event_stream_loss_is_retried() -> None:
    class Flaky(FakeFleetClient):
        failures = 1

        async def subscribe(self, kinds=None, **options):  # type: ignore[no-untyped-def,override]
            if self.failures:
                self.failures -= 1
                from fleet.errors import FleetNotRunning

                raise FleetNotRunning("socket closed")
                yield {}
            async for event in super().subscribe(kinds):
                yield event

    client = Flaky(clock=frozen_clock)
    app = make_app(client)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, lambda: loaded(app))
        await settle(pilot, lambda: any("Event stream lost" in n for n in notes(app)))
        for _ in range(100):
            if client._queues:
                break
            await asyncio.sleep(0.05)  # the app's own reconnect backoff is real time
        assert client._queues


def test_per_minute_buckets_usage() -> None:
    from console.screens.agent import per_minute

    now = 10_000.0
    calls = [
        {"ts": now - 10, "tokens_in": 5, "tokens_out": 5, "cost_usd": 0.5, "outcome": "ok"},
        {"ts": now - 70, "tokens_in": 1, "tokens_out": 2, "cost_usd": 0.25, "outcome": "error"},
        {"ts": now - 4000, "tokens_in": 100, "tokens_out": 0, "cost_usd": 9.0, "outcome": "ok"},
    ]
    series = per_minute(calls, now, minutes=5)
    assert series["tokens"] == [0, 0, 0, 3, 10]
    assert series["cost"] == [0, 0, 0, 0.25, 0.5]
    assert series["errors"] == [0, 0, 0, 1, 0]


def test_console_imports_only_the_client_contract() -> None:
    root = Path(__file__).parents[2] / "console"
    forbidden = ("fleet.supervisor", "fleet.store", "fleet.policy", "fleet.gateway", "fleet.agent")
    for path in root.rglob("*.py"):
        text = path.read_text()
        for name in forbidden:
            assert name not in text, f"{path} imports {name}"


def test_importing_console_app_is_fast_and_fleet_stays_textual_free() -> None:
    code = "import fleet.ansi, fleet.records, fleet.control.api, sys; assert 'textual' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


async def test_stats_repaint_only_the_rows_that_changed() -> None:
    """200 agents' uptime ticking each second must not repaint the whole table each second."""
    client = FakeFleetClient(clock=frozen_clock)
    app = make_app(client)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot, lambda: loaded(app))
        table = app.fleet_screen.table
        repaints: list[tuple] = []
        original = type(table).refresh

        def spy(self, *regions, **kwargs):
            if not getattr(self, "_hold_repaint", False):
                repaints.append(regions)
            return original(self, *regions, **kwargs)

        table.refresh = spy.__get__(table)
        client.agents["ticker"].update(cpu_pct=42.0)
        client.push("stats", {"agents": [dict(a) for a in client.agents.values()]})
        await settle(pilot, lambda: table.get_cell("ticker", "cpu") == "42.0")
        row = table.get_row_index("ticker")
        assert repaints and all(regions for regions in repaints)  # partial repaints only
        assert "42.0" in table.render_line(row + 1).text  # and the row shows the new value


async def test_log_views_run_no_timer_while_no_lines_come() -> None:
    """An idle console must not wake up to paint nothing (it was 15 times a second per log view)."""
    from console.widgets.log_view import LogView

    client = FakeFleetClient(clock=frozen_clock)
    app = make_app(client)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot, lambda: loaded(app))
        views = list(app.screen.query(LogView))
        await settle(pilot, lambda: all(v._drain_timer is None for v in views))
        before = views[0].painted_lines
        client.push_lines(views[0].source, ["one more line"])
        await settle(pilot, lambda: views[0].painted_lines > before)
        assert all(v._drain_timer is None for v in views)


async def test_lines_a_flood_kept_from_the_live_view_are_announced_not_silent() -> None:
    client = FakeFleetClient(clock=frozen_clock)
    app = make_app(client)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, lambda: loaded(app))
        client.push("logs_skipped", {"lines": 1234, "agents": {"ticker": 1234}})
        client.push("logs_skipped", {"lines": 10, "agents": {"ticker": 10}})  # within the quiet period: counted
        await settle(pilot, lambda: any("lines not shown live" in m for m in notes(app)))
        [note] = [m for m in notes(app) if "not shown live" in m]
        assert note.startswith("1,234 lines") and "fleet logs" in note
        assert app._skipped_lines == 10


async def test_uptime_runs_on_between_pushes() -> None:
    """The fleet pushes an agent only when more than its uptime changed: the table runs that clock."""
    now = [frozen_clock()]
    client = FakeFleetClient(clock=frozen_clock)
    app = FleetConsole(client, embedded=False, fleet_name="demo", clock=lambda: now[0])
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot, lambda: loaded(app))
        table = app.fleet_screen.table
        name = next(n for n, a in client.agents.items() if a["uptime_s"] == 65.0)
        idle = next(n for n, a in client.agents.items() if a["pid"] is None)
        assert table.get_cell(name, "uptime") == "1m"
        now[0] += 120.0  # two minutes and no push at all
        table.tick_uptime()
        assert table.get_cell(name, "uptime") == "3m"
        assert table.get_cell(idle, "uptime") == fmt.uptime(None)  # no process: no clock
        # A push re-bases the clock on the fleet's figure.
        client.push("stats", {"agents": [dict(client.agents[name], uptime_s=30.0)]})
        await settle(pilot, lambda: table.get_cell(name, "uptime") == "30s")


async def test_lines_arriving_under_a_shown_scrollbar_lay_out_nothing(client: FakeFleetClient) -> None:
    """More rows only move the scrollbar's thumb: no layout of the whole screen per paint (a flood's cost)."""
    app = make_app(client)
    async with app.run_test(size=(120, 35)) as pilot:
        await settle(pilot, lambda: loaded(app))
        view = app.screen.query_one(LogView)
        client.push_lines(FIRST, [f"fill {i}" for i in range(200)])
        await settle(pilot, lambda: view.lines and view.lines[-1] == "fill 199")
        await pilot.pause()
        assert view.show_vertical_scrollbar
        layouts: list[int] = []
        real = app.screen._refresh_layout
        app.screen._refresh_layout = lambda *a, **k: (layouts.append(1), real(*a, **k))[1]  # type: ignore[method-assign]
        height = view.virtual_size.height
        client.push_lines(FIRST, [f"more {i}" for i in range(50)])
        await settle(pilot, lambda: view.lines[-1] == "more 49")
        await pilot.pause()
        assert view.virtual_size.height == height + 50
        assert view.vertical_scrollbar.window_virtual_size == height + 50
        assert view.scroll_y == view.max_scroll_y  # still following
        assert not layouts


async def test_a_view_shown_again_appends_what_came_meanwhile_without_replaying_its_ring(
    client: FakeFleetClient,
) -> None:
    """Back on the fleet screen: only the lines that arrived while hidden are built (a rebuild replays 10 000)."""
    app = make_app(client)
    async with app.run_test(size=(120, 35)) as pilot:
        await settle(pilot, lambda: loaded(app))
        view = app.fleet_screen.query_one(LogView)
        client.push_lines(FIRST, [f"before {i}" for i in range(100)])
        await settle(pilot, lambda: view.lines and view.lines[-1] == "before 99")
        rebuilds: list[int] = []
        real = view.rebuild
        view.rebuild = lambda **kw: (rebuilds.append(1), real(**kw))[1]  # type: ignore[method-assign]
        await pilot.press("enter")
        await settle(pilot, lambda: isinstance(app.screen, AgentScreen))
        client.push_lines(FIRST, [f"while hidden {i}" for i in range(30)])
        await settle(pilot, lambda: app.hub.ring(FIRST).blocks[-1].lines[-1] == "while hidden 29")
        await pilot.press("escape")
        await settle(pilot, lambda: isinstance(app.screen, FleetScreen) and view.active)
        assert view.lines[-31:] == ["before 99", *(f"while hidden {i}" for i in range(30))]
        assert not rebuilds
        # History put in front of the ring while hidden: the rows no longer match it, so it is replayed.
        await pilot.press("enter")
        await settle(pilot, lambda: isinstance(app.screen, AgentScreen))
        ring = app.hub.ring(FIRST)
        ring.prepend([Block(FIRST, "stdout", 1, 0.0, ["from history"])])
        await pilot.press("escape")
        await settle(pilot, lambda: isinstance(app.screen, FleetScreen) and view.active)
        assert rebuilds


async def test_a_view_whose_source_changed_while_hidden_is_rebuilt_not_appended(client: FakeFleetClient) -> None:
    """The merged ring holds the agent's blocks too: appending "what came since" would mix sources."""
    app = make_app(client)
    async with app.run_test(size=(120, 35)) as pilot:
        await settle(pilot, lambda: loaded(app))
        view = app.fleet_screen.query_one(LogView)
        client.push_lines(FIRST, ["first's line"])
        await settle(pilot, lambda: view.lines and view.lines[-1] == "first's line")
        await pilot.press("enter")
        await settle(pilot, lambda: isinstance(app.screen, AgentScreen))
        view.set_source(MERGED)  # e.g. the table moved under a hidden screen
        client.push_lines(SECOND, ["second's line"])
        await settle(pilot, lambda: app.hub.ring(MERGED).blocks[-1].lines == ["second's line"])
        await pilot.press("escape")
        await settle(pilot, lambda: isinstance(app.screen, FleetScreen) and view.active)
        await settle(pilot, lambda: any("second's line" in line for line in view.lines))
        # Merged rows name their agent: the older row was rebuilt as merged too, not kept as it was.
        [older] = [line for line in view.lines if "first's line" in line]
        assert FIRST in older
