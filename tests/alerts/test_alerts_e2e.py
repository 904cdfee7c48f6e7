"""Alerts in a running fleet: rules on real agents, the action carried out, counted in status."""

from __future__ import annotations

from fleet.gateway import FakeProvider, Gateway
from fleet.gateway.provider import ProviderCallError

QUIET = """
    async def run(ctx):
        print("hello, then nothing", flush=True)
        await ctx.sleep(3600)
"""

RAISER = """
    async def run(ctx):
        ctx.alert("queue depth high", severity="warning", rule="depth", depth=90)
        ctx.alert("queue depth higher", severity="warning", rule="depth", depth=95)
        print("RAISED", flush=True)
        await ctx.sleep(3600)
"""


async def test_a_stalled_agent_is_paused_by_policy_audited_and_counted(fleet_factory):
    f = await fleet_factory(
        """
        [[agent]]
        name = "quiet"
        run = "agents.q:run"
        [agent.alerts]
        silence_s = 0.5
        action = "pause"
        """,
        {"agents/q.py": QUIET},
    )
    alert = await f.events.wait_for(lambda e: e["event"] == "alert" and e["data"]["rule"] == "stalled")
    assert alert["data"]["agent"] == "quiet" and alert["data"]["action"] == "pause"
    paused = await f.events.state("quiet", "paused")
    assert paused["data"]["reason"].startswith("alert stalled: no output or progress")
    audit = await f.events.wait_for(lambda e: e["event"] == "audit" and e["data"]["origin"] == "policy")
    assert audit["data"]["action"] == "pause" and audit["data"]["target"] == "quiet"
    assert (await f.agent("quiet"))["alerts"] == 1
    listed = await f.call("alerts", open_only=True)
    assert [(a["agent"], a["rule"], a["state"]) for a in listed["alerts"]] == [("quiet", "stalled", "open")]
    history = (await f.call("alerts"))["alerts"]
    assert [(a["agent"], a["rule"], a["state"]) for a in history] == [("quiet", "stalled", "open")]
    rows = await f.runtime.store.audit_log()
    assert [(r["action"], r["target"], r["origin"]) for r in rows] == [("pause", "quiet", "policy")]


async def test_agent_raised_alerts_go_through_the_same_path_deduplicated(fleet_factory):
    f = await fleet_factory(
        '[[agent]]\nname = "raiser"\nrun = "agents.r:run"\n',
        {"agents/r.py": RAISER},
    )
    await f.events.wait_for(lambda e: e["event"] == "logs" and "RAISED" in e["data"]["text"])
    await f.wait_status("raiser", lambda a: a["alerts"] == 1)
    [open_] = (await f.call("alerts", open_only=True))["alerts"]
    assert (open_["rule"], open_["count"], open_["message"]) == ("depth", 2, "queue depth higher")
    assert open_["fields"] == {"depth": 95}
    published = [e for e in f.events.events if e["event"] == "alert"]
    assert len(published) == 1 and published[0]["data"]["message"] == "queue depth high"
    assert (await f.agent("raiser"))["state"] == "running"  # default action: notify


async def test_error_rate_from_failed_llm_calls_pauses(fleet_factory):
    failing = """
        from fleet.agent import FleetError
        async def run(ctx):
            for i in range(6):
                try:
                    await ctx.llm("hi", max_tokens=5)
                except FleetError as exc:
                    print("FAILED", type(exc).__name__, flush=True)
            await ctx.sleep(3600)
    """
    gw = Gateway(FakeProvider([ProviderCallError("provider down")]), environ={})
    f = await fleet_factory(
        """
        [[agent]]
        name = "flaky"
        run = "agents.f:run"
        [agent.alerts]
        error_rate = 0.5
        action = "pause"
        """,
        {"agents/f.py": failing},
        gateway=gw,
    )
    alert = await f.events.wait_for(lambda e: e["event"] == "alert" and e["data"]["rule"] == "error_rate")
    assert alert["data"]["fields"]["rate"] == 1.0 and alert["data"]["severity"] == "error"
    await f.events.state("flaky", "paused")
