"""The first restart waits ``backoff_initial_s`` (as the policy reference says), then it doubles."""

from __future__ import annotations


async def test_first_restart_waits_backoff_initial(fleet_factory):
    f = await fleet_factory(
        """
        [[agent]]
        name = "crashy"
        command = ["sh", "-c", "exit 3"]
        [agent.restart]
        mode = "on-failure"
        backoff_initial_s = 0.4
        backoff_max_s = 5
        max_restarts = 10
        """
    )
    crashed = await f.events.state("crashy", "crashed")
    backoff = await f.events.state("crashy", "backoff")
    assert backoff["data"]["reason"] == "restarting in 0.4s"
    # The second start: a "running" event after the first crash.
    again = await f.events.wait_for(
        lambda e: e["event"] == "state" and e["data"]["agent"] == "crashy" and e["data"]["state"] == "running"
        and e["data"]["ts"] > crashed["data"]["ts"]
    )
    assert again["data"]["ts"] - crashed["data"]["ts"] >= 0.39
    second = await f.events.wait_for(
        lambda e: e["event"] == "state" and e["data"]["agent"] == "crashy" and e["data"]["state"] == "backoff"
        and e["data"]["ts"] > again["data"]["ts"]
    )
    assert second["data"]["reason"] == "restarting in 0.8s"
