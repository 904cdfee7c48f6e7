"""Live reload against a running fleet: policy edits reach agents, fleet.toml edits reshape the fleet."""

from __future__ import annotations

import os

WATCHER = """
    async def run(ctx):
        print("budget", ctx.policy.budget.usd_per_day, "goal", ctx.goal, "v", ctx.policy_version, flush=True)
        ctx.on_policy_change(lambda p: print("callback", p.budget.usd_per_day, flush=True))
        while True:
            p = await ctx.policy_changed()
            print("budget", p.budget.usd_per_day, "goal", ctx.goal, "v", ctx.policy_version, flush=True)
"""

FLEET = """
[[agent]]
name = "w"
run = "agents.w:run"
policy = "ops"
goal = "first goal"

[[agent]]
name = "s"
command = ["sleep", "600"]
"""


def save(path, text: str) -> None:
    """An atomic save, as editors and the console do it."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def logs_with(f, text: str):
    return lambda e: e["event"] == "logs" and text in e["data"]["text"]


async def test_policy_edit_reaches_the_sdk_agent_and_bumps_the_version(fleet_factory):
    f = await fleet_factory(FLEET, {"agents/w.py": WATCHER,
                                    "policies/ops.toml": "[budget]\nusd_per_day = 1.0\n"}, watch=True)
    await f.events.wait_for(logs_with(f, "budget 1.0 goal first goal"))
    v0 = (await f.call("status"))["policy_version"]
    s_pid = (await f.agent("s"))["pid"]
    await f.runtime.watcher.ready.wait()
    save(f.dir / "policies/ops.toml", "[budget]\nusd_per_day = 2.5\n")
    applied = await f.events.wait_for(lambda e: e["event"] == "policy_applied")
    assert applied["data"]["version"] == v0 + 1
    assert applied["data"]["files"] == ["policies/ops.toml"]
    await f.events.wait_for(logs_with(f, "callback 2.5"))
    ev = await f.events.wait_for(logs_with(f, "budget 2.5"))
    assert f"v {v0 + 1}" in ev["data"]["text"]
    assert (await f.call("status"))["policy_version"] == v0 + 1
    assert (await f.agent("s"))["pid"] == s_pid, "a policy edit restarts nothing"
    shown = await f.call("policy_show", name="w")
    assert shown["policy"]["budget"]["usd_per_day"] == 2.5


async def test_invalid_save_keeps_the_last_good_policy_and_fixing_it_applies(fleet_factory):
    f = await fleet_factory(FLEET, {"agents/w.py": WATCHER,
                                    "policies/ops.toml": "[budget]\nusd_per_day = 1.0\n"}, watch=True)
    await f.runtime.watcher.ready.wait()
    v0 = (await f.call("status"))["policy_version"]
    save(f.dir / "policies/ops.toml", "[budget]\nusd_per_day = -3\n")
    err = await f.events.wait_for(lambda e: e["event"] == "policy_error")
    first = err["data"]["errors"][0]
    assert first["path"] == "policies/ops.toml" and first["line"] == 2
    assert (await f.call("status"))["policy_version"] == v0
    assert (await f.call("policy_show", name="w"))["policy"]["budget"]["usd_per_day"] == 1.0
    save(f.dir / "policies/ops.toml", "[budget]\nusd_per_day = 4.0\n")
    await f.events.wait_for(lambda e: e["event"] == "policy_applied")
    await f.events.wait_for(logs_with(f, "budget 4.0"))


async def test_fleet_toml_edits_start_stop_scale_and_restart_only_what_changed(fleet_factory):
    f = await fleet_factory(FLEET, {"agents/w.py": WATCHER,
                                    "policies/ops.toml": ""}, watch=True)
    await f.events.state("w", "running")
    await f.events.state("s", "running")
    await f.runtime.watcher.ready.wait()
    w_pid = (await f.agent("w"))["pid"]
    s_pid = (await f.agent("s"))["pid"]
    # Add an agent and scale another.
    save(f.dir / "fleet.toml", FLEET.replace('command = ["sleep", "600"]', 'command = ["sleep", "600"]\nreplicas = 2')
         + '\n[[agent]]\nname = "new"\ncommand = ["sleep", "601"]\n')
    applied = await f.events.wait_for(lambda e: e["event"] == "policy_applied")
    assert set(applied["data"]["started"]) == {"new", "s#1", "s#2"}
    assert applied["data"]["stopped"] == ["s"]
    await f.events.state("new", "running")
    names = [a["name"] for a in (await f.call("status"))["agents"]]
    assert names == ["w", "s#1", "s#2", "new"]
    assert (await f.agent("w"))["pid"] == w_pid
    # Change one command: only that agent restarts; remove another.
    save(f.dir / "fleet.toml", FLEET.replace('"sleep", "600"', '"sleep", "602"'))
    applied = await f.events.wait_for(lambda e: e["event"] == "policy_applied" and e["data"]["stopped"]
                                      and "new" in e["data"]["stopped"])
    st = {a["name"]: a for a in (await f.call("status"))["agents"]}
    assert set(st) == {"w", "s"}
    assert st["w"]["pid"] == w_pid
    assert st["s"]["pid"] not in (None, s_pid)
    assert "s" in applied["data"]["started"] or "s" in applied["data"]["restarted"]
