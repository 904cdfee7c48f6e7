"""The console driven by Pilot against a real fleet of small agents, over the real socket.

The fake-client tests in tests/console cover every widget; these prove the
console and the supervisor agree: a key press changes the real process, and
the fleet's events change the screen.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from textual.pilot import Pilot

from console.app import FleetConsole
from console.screens.modals import ConfirmAction
from fleet.control.client import SocketClient
from tests.procstate import stopped

FLEET = """
[fleet]
name = "pilotfleet"

[[agent]]
name = "clock"
command = ["sh", "-c", "while true; do echo tick; sleep 0.2; done"]

[[agent]]
name = "asker"
run = "agents.asker:run"
[agent.tools]
approve = ["send_report"]
approval_timeout_s = 60
"""

ASKER = """
from fleet.agent import ApprovalDenied
async def run(ctx):
    try:
        await ctx.tool("send_report", to="board")
        print("SENT", flush=True)
    except ApprovalDenied as exc:
        print("NOT SENT", exc, flush=True)
    await ctx.sleep(3600)
"""


async def until(pilot: Pilot[object], pred: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
    """Let the app run until ``pred`` holds: real processes take real time."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


async def console_on(f) -> tuple[FleetConsole, SocketClient]:
    client = await SocketClient.connect(f.runtime.server.path, origin="console")
    return FleetConsole(client, embedded=False, fleet_name="pilotfleet"), client


def state(app: FleetConsole, name: str) -> str | None:
    return app.fleet_screen.table.state_of(name)


async def test_keys_pause_resume_restart_and_stop_real_agents(fleet_factory):
    f = await fleet_factory(FLEET, {"agents/asker.py": ASKER})
    app, client = await console_on(f)
    async with app.run_test(size=(120, 35)) as pilot:
        await until(pilot, lambda: state(app, "clock") == "running", what="clock running")
        pid = (await f.agent("clock"))["pid"]
        await pilot.press("p")
        await until(pilot, lambda: state(app, "clock") == "paused", what="clock paused on screen")
        assert (await f.agent("clock"))["state"] == "paused"
        # SIGSTOP acts as the process leaves the kernel: poll for it (see tests.procstate).
        await until(pilot, lambda: stopped(pid), what="clock's process stopped")
        await pilot.press("r")
        await until(pilot, lambda: state(app, "clock") == "running", what="clock resumed")
        await pilot.press("x")
        await until(pilot, lambda: app.agents.get("clock", {}).get("pid") not in (None, pid), what="new pid")
        assert (await f.agent("clock"))["restarts"] == 1
        await pilot.press("s")  # a running agent: asks first, naming it
        await until(pilot, lambda: isinstance(app.screen, ConfirmAction), what="stop confirmation")
        await pilot.press("y")
        await until(pilot, lambda: state(app, "clock") == "stopped", what="clock stopped")
        await pilot.press("s")
        await until(pilot, lambda: state(app, "clock") == "running", what="clock started")
    await client.close()
    operator = [e["data"] for e in f.events.events if e["event"] == "audit" and e["data"]["origin"] != "policy"]
    assert [a["action"] for a in operator] == ["pause", "resume", "restart", "stop", "start"]
    assert {a["origin"] for a in operator} == {"console"}
