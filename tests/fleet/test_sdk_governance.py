"""SDK agents in real processes calling the gateway, tools and approvals through the supervisor."""

from __future__ import annotations

import json

import pytest

from fleet.gateway import FakeProvider, Gateway

LLM_AGENT = """
    from fleet.agent import FleetError
    async def run(ctx):
        reply = await ctx.llm("hello there", max_tokens=50)
        print("REPLY", reply["choices"][0]["message"]["content"], reply["usage"]["total_tokens"])
        chunks = []
        async for chunk in ctx.llm_stream([{"role": "user", "content": "stream please"}], max_tokens=50):
            if chunk["choices"]:  # the last chunk carries only usage, as OpenAI's do
                chunks.append(chunk["choices"][0]["delta"].get("content") or "")
        print("STREAMED", len(chunks), "".join(chunks))
        try:
            await ctx.llm("x", model="gpt-4o")
        except FleetError as exc:
            print("REFUSED", type(exc).__name__, exc.policy)
        await ctx.sleep(60)
"""


async def test_llm_calls_go_through_the_gateway_and_are_accounted(fleet_factory):
    gw = Gateway(FakeProvider(["fine words from the model"]), environ={})
    f = await fleet_factory(
        """
        [[agent]]
        name = "llm"
        run = "agents.llm:run"
        [agent.llm]
        models = ["fleet/*"]
        """,
        {"agents/llm.py": LLM_AGENT},
        gateway=gw,
    )
    ev = await f.events.wait_for(lambda e: e["event"] == "logs" and "REFUSED" in e["data"]["text"])
    text = "".join(e["data"]["text"] for e in f.events.events if e["event"] == "logs")
    assert "REPLY fine words from the model" in text
    assert "STREAMED" in text and "fine words from the model" in text.split("STREAMED", 1)[1]
    assert "REFUSED PolicyDenied llm.models" in ev["data"]["text"]
    # The refusal is in the agent's own log too (its fleet stream), not only in usage and toasts.
    await f.events.wait_for(
        lambda e: e["event"] == "logs" and e["data"]["stream"] == "fleet" and "LLM call to" in e["data"]["text"]
        and "denied" in e["data"]["text"]
    )  # fmt: skip
    a = await f.agent("llm")
    assert a["tokens"] > 0 and a["cost_usd"] > 0
    usage = (await f.call("usage", agent="llm"))["calls"]
    assert {u["outcome"] for u in usage} >= {"ok", "denied"}
    assert all(u["agent"] == "llm" for u in usage)


BUDGET_AGENT = """
    from fleet.agent import FleetError
    async def run(ctx):
        while True:
            try:
                await ctx.llm("spend", max_tokens=100)
                print("SPENT")
            except FleetError as exc:
                print("STOPPED", type(exc).__name__, exc)
            await ctx.sleep(0.05)
"""


async def test_exhausted_daily_budget_pauses_the_agent_with_a_reason(fleet_factory):
    gw = Gateway(FakeProvider(["ok"], price_in=1e-3, price_out=1e-3, tokens_out=100), environ={})
    f = await fleet_factory(
        """
        [[agent]]
        name = "spender"
        run = "agents.b:run"
        [agent.budget]
        usd_per_day = 0.25
        on_exhausted = "pause"
        """,
        {"agents/b.py": BUDGET_AGENT},
        gateway=gw,
    )
    ev = await f.events.state("spender", "paused")
    assert "budget exhausted" in ev["data"]["reason"]
    assert ev["data"]["reason_kind"] == "budget" and ev["data"]["since"] > 0  # why and since when
    a = await f.agent("spender")
    assert a["state"] == "paused" and a["reason_kind"] == "budget" and a["since"] == pytest.approx(ev["data"]["since"])
    assert a["budget_usd"] == 0.25
    assert a["cost_today_usd"] <= 0.25 + 0.2  # at most one call over
    assert a["budget_used"] is not None and a["budget_used"] >= 0.5


TOOL_AGENT = """
    from fleet.agent import ApprovalDenied, PolicyDenied
    async def run(ctx):
        for name in ["search", "shell", "send_email", "send_email"]:
            try:
                out = await ctx.tool(name, lambda **kw: "ran " + name, to="a@b.c")
                print("TOOL", name, out)
            except ApprovalDenied as exc:
                print("NOTAPPROVED", name, exc)
            except PolicyDenied as exc:
                print("DENIED", name, exc.policy)
        print("DONE")
        await ctx.sleep(60)
"""


async def test_tools_allow_deny_and_human_approval(fleet_factory):
    f = await fleet_factory(
        """
        [[agent]]
        name = "tooler"
        run = "agents.t:run"
        [agent.tools]
        allow = ["search", "send_*"]
        deny = ["shell"]
        approve = ["send_email"]
        approval_timeout_s = 30
        """,
        {"agents/t.py": TOOL_AGENT},
    )
    first = await f.events.wait_for(lambda e: e["event"] == "approval" and e["data"]["status"] == "pending")
    pending = (await f.call("approvals"))["approvals"]
    assert len(pending) == 1 and pending[0]["action"] == "send_email"
    assert pending[0]["details"]["args"] == {"to": "a@b.c"}
    assert "context" in pending[0]["details"]
    await f.call("approve", id=first["data"]["id"])
    second = await f.events.wait_for(lambda e: e["event"] == "approval" and e["data"]["status"] == "pending"
                                     and e["data"]["id"] != first["data"]["id"])
    await f.call("deny", id=second["data"]["id"], reason="not to the board")
    await f.events.wait_for(lambda e: e["event"] == "logs" and "DONE" in e["data"]["text"])
    text = "".join(e["data"]["text"] for e in f.events.events if e["event"] == "logs")
    assert "TOOL search ran search" in text
    assert "DENIED shell tools" in text
    assert "TOOL send_email ran send_email" in text
    assert "NOTAPPROVED send_email" in text and "not to the board" in text
    audit = [e for e in f.events.events if e["event"] == "audit" and e["data"]["action"] in ("approve", "deny")]
    assert [a["data"]["origin"] for a in audit] == ["test", "test"]
    decided = (await f.call("approvals", pending_only=False))["approvals"]
    assert {d["status"] for d in decided} == {"approved", "denied"}


async def test_unanswered_approval_times_out_as_denied(fleet_factory):
    agent = """
        async def run(ctx):
            answer = await ctx.approve("publish_post", {"title": "hi"})
            print("ANSWER", answer.approved, answer.decided_by, answer.reason)
            await ctx.sleep(60)
    """
    f = await fleet_factory(
        '[[agent]]\nname = "asker"\nrun = "agents.a:run"\n[agent.tools]\napproval_timeout_s = 0.3\n',
        {"agents/a.py": agent},
    )
    ev = await f.events.wait_for(lambda e: e["event"] == "logs" and "ANSWER" in e["data"]["text"])
    assert "ANSWER False timeout" in ev["data"]["text"]
    assert (await f.call("approvals"))["approvals"] == []


async def test_policy_ops_show_origins_and_reject_bad_writes(fleet_factory):
    f = await fleet_factory(
        '[[agent]]\nname = "p"\ncommand = ["sleep", "60"]\npolicy = "ops"\n',
        {"policies/ops.toml": "[budget]\nusd_per_day = 3.5\n"},
    )
    shown = await f.call("policy_show", name="p")
    assert shown["policy"]["budget"]["usd_per_day"] == 3.5
    assert shown["origins"]["budget.usd_per_day"] == "policies/ops.toml"
    files = {x["path"] for x in (await f.call("policy_files"))["files"]}
    assert files == {"fleet.toml", "policies/ops.toml"}
    bad = await f.call("policy_write", path="policies/ops.toml", text="[budget]\nusd_per_dya = 1\n")
    assert bad["written"] is False and "did you mean 'usd_per_day'" in json.dumps(bad["errors"])
    assert (f.dir / "policies/ops.toml").read_text() == "[budget]\nusd_per_day = 3.5\n"
    from fleet.errors import FleetError

    try:
        await f.call("policy_write", path="../evil.toml", text="")
    except FleetError as exc:
        assert "only fleet.toml and policies" in str(exc)
    else:
        raise AssertionError("path outside the fleet was accepted")


async def test_the_gateway_loads_only_when_an_sdk_agent_needs_it(fleet_factory):
    f = await fleet_factory('[[agent]]\nname = "plain"\ncommand = ["sleep", "60"]\n')
    await f.events.state("plain", "running")
    assert (await f.call("status"))["gateway"] == "idle"
    g = await fleet_factory(
        '[[agent]]\nname = "sdk"\nrun = "agents.s:run"\n',
        {"agents/s.py": "async def run(ctx):\n    await ctx.sleep(60)\n"},
        name="second",
    )
    await g.events.state("sdk", "running")
    await g.sup.gateway.ready()
    assert (await g.call("status"))["gateway"] == "ready"
