"""Pilot tests: agents that need their operator — input with ``i``, questions in the "needs you" queue."""

from __future__ import annotations

from console_helpers import frozen_clock, settle
from fake_client import FakeFleetClient
from textual.widgets import DataTable, Input, OptionList

from console.app import FleetConsole
from console.screens.approvals import ApprovalsScreen
from console.screens.modals import ChoicePrompt, TextPrompt
from console.screens.send_input import SendInput


def make_app(client: FakeFleetClient) -> FleetConsole:
    return FleetConsole(client, embedded=False, fleet_name="demo", clock=frozen_clock)


def loaded(app: FleetConsole) -> bool:
    return app.fleet_screen.table.row_count == len(app.agents) > 0


async def to_row(pilot, app: FleetConsole, name: str) -> None:  # type: ignore[no-untyped-def]
    table = app.fleet_screen.table
    table.move_cursor(row=table.get_row_index(name))
    await settle(pilot, lambda: table.cursor_agent == name)


async def test_i_writes_a_line_to_a_waiting_agent_and_ctrl_d_sends_eof(client: FakeFleetClient) -> None:
    client._set_state("ticker", "waiting", "Proceed? [y/N]")
    app = make_app(client)
    async with app.run_test(size=(120, 35)) as pilot:
        await settle(pilot, lambda: loaded(app) and app.agents["ticker"].get("state") == "waiting")
        assert "⌨ 1" in str(app.fleet_screen.query_one("#fleet-info").render())  # counted in the header
        await to_row(pilot, app, "ticker")
        await pilot.press("i")
        await settle(pilot, lambda: isinstance(app.screen, SendInput))
        assert "Proceed? [y/N]" in str(app.screen.query("Label")[1].render())
        await pilot.press("y", "e", "s", "enter")
        await settle(pilot, lambda: client.inputs.get("ticker") == [("yes", False)])
        await settle(pilot, lambda: app.fleet_screen.table.state_of("ticker") == "running")
        assert ("send", {"name": "ticker", "text": "yes", "eof": False, "by": "console"}) in client.calls
        await pilot.press("i")
        await settle(pilot, lambda: isinstance(app.screen, SendInput))
        await pilot.press("ctrl+d")
        await settle(pilot, lambda: client.inputs["ticker"][-1] == ("", True))
        assert any("not waiting" in n.message for n in app._notifications)


async def test_i_is_refused_for_an_sdk_agent_without_a_question(client: FakeFleetClient) -> None:
    app = make_app(client)
    async with app.run_test(size=(120, 35)) as pilot:
        await settle(pilot, lambda: loaded(app))
        await to_row(pilot, app, "anomaly-watch")
        await pilot.press("i")
        await pilot.pause()
        assert not isinstance(app.screen, SendInput)


async def test_questions_join_approvals_in_one_queue_and_are_answered(client: FakeFleetClient) -> None:
    app = make_app(client)
    async with app.run_test(size=(120, 35)) as pilot:
        await settle(pilot, lambda: loaded(app) and app.pending_approvals == 1)
        qid = client.add_question("anomaly-watch", "Which region first?", ["emea", "apac"])
        await settle(pilot, lambda: len(app.open_questions) == 1)
        badge = str(app.fleet_screen.query_one("#approvals-badge").render())
        assert "1 approval, 1 question (a)" in badge
        await pilot.press("a")
        await settle(pilot, lambda: isinstance(app.screen, ApprovalsScreen))
        table = app.screen.query_one(DataTable)
        await settle(pilot, lambda: table.row_count == 2)
        # Oldest first: the approval (asked a minute ago), then the question; both name their agent.
        assert [str(k.value) for k in table.rows] == ["1", f"q{qid}"]
        assert str(table.get_cell(f"q{qid}", "agent")) == "anomaly-watch"
        assert "Which region first?  [emea | apac]" in str(table.get_cell(f"q{qid}", "details"))
        table.move_cursor(row=1)
        await pilot.pause()
        await pilot.press("y")  # not an approval: nothing to approve
        await pilot.pause()
        assert client.approvals[1]["status"] == "pending"
        await pilot.press("enter")
        await settle(pilot, lambda: isinstance(app.screen, ChoicePrompt))
        options = app.screen.query_one(OptionList)
        options.highlighted = 1
        await pilot.press("enter")
        await settle(pilot, lambda: client.questions[qid]["status"] == "answered")
        assert client.questions[qid]["answer"] == "apac" and client.questions[qid]["answered_by"] == "console"
        await settle(pilot, lambda: table.row_count == 1)


async def test_i_on_an_asking_sdk_agent_answers_its_question(client: FakeFleetClient) -> None:
    app = make_app(client)
    async with app.run_test(size=(120, 35)) as pilot:
        await settle(pilot, lambda: loaded(app))
        qid = client.add_question("anomaly-watch", "Name the report?")
        await settle(pilot, lambda: len(app.open_questions) == 1)
        await to_row(pilot, app, "anomaly-watch")
        await pilot.press("i")
        await settle(pilot, lambda: isinstance(app.screen, TextPrompt))
        app.screen.query_one(Input).value = "weekly"
        await pilot.press("enter")
        await settle(pilot, lambda: client.questions[qid]["status"] == "answered")
        assert client.questions[qid]["answer"] == "weekly"
        await settle(pilot, lambda: app.fleet_screen.table.state_of("anomaly-watch") == "running")


async def test_enter_on_a_tty_agent_offers_attaching(client: FakeFleetClient) -> None:
    from console.screens.agent import AgentScreen

    client.agents["ticker"]["tty"] = True
    client.agents["ticker"]["fleet_dir"] = "/nowhere"
    app = make_app(client)
    async with app.run_test(size=(120, 35)) as pilot:
        await settle(pilot, lambda: loaded(app))
        app.status["fleet_dir"] = "/nowhere"
        await to_row(pilot, app, "ticker")
        await pilot.press("enter")
        await settle(pilot, lambda: isinstance(app.screen, ChoicePrompt))
        await pilot.press("enter")  # the first choice: attach (a headless test terminal cannot be handed over)
        await settle(pilot, lambda: any("fleet attach ticker" in n.message for n in app._notifications))
        await pilot.press("enter")
        await settle(pilot, lambda: isinstance(app.screen, ChoicePrompt))
        await pilot.press("down", "enter")
        await settle(pilot, lambda: isinstance(app.screen, AgentScreen))
