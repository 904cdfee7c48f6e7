"""The CLI's blocking client: same replies and typed errors as the asyncio one, no event loop."""

from __future__ import annotations

import asyncio

import pytest

from fleet.control.blocking import BlockingClient
from fleet.errors import FleetNotRunning, UnknownAgent


async def test_calls_errors_and_pushed_events_skipped(fleet_factory):
    f = await fleet_factory(
        '[[agent]]\nname = "s"\ncommand = ["sh", "-c", "while :; do echo tick; sleep 0.01; done"]\n'
    )
    await f.wait_status("s", lambda a: a["state"] == "running")

    def session() -> tuple[dict, dict, type]:
        with BlockingClient(f.runtime.server.path) as c:
            c.call("subscribe", kinds=["logs"])  # pushes now interleave with replies
            paused = c.call("pause", names=["s"])
            st = c.call("status")
            try:
                c.call("pause", names=["nope"])
            except UnknownAgent as exc:
                err = type(exc)
            return paused, st, err

    # Run off the loop: the supervisor's ops run on this test's loop.
    paused, st, err = await asyncio.to_thread(session)
    assert paused["agents"] == ["s"]
    assert st["agents"][0]["state"] in ("paused", "pausing")
    assert err is UnknownAgent
    audit = await f.call("events", kinds=["audit"])
    assert any(e["data"].get("origin") == "cli" for e in audit["events"])


def test_no_fleet_is_a_clear_error(tmp_path):
    with pytest.raises(FleetNotRunning, match="nothing answers"):
        BlockingClient(tmp_path / "control.sock")
