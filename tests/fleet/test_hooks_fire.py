"""Every hook of ``fleet.supervisor.seams.Hooks`` is fired by a real fleet, with the documented arguments.

An SDK agent takes a task, logs, sends a metric, raises an alert, calls the
model, finishes the task and exits with code 3; then a new policy book is
applied. A listener on each hook records what it got. (``on_exit`` was
documented and never fired; ``on_task`` fired and was not documented.)
"""

from __future__ import annotations

import dataclasses
from typing import Any

from fleet.policy import load_book
from fleet.records import AgentState, UsageRecord
from fleet.supervisor.seams import Hooks

AGENT = """
    import os
    async def run(ctx):
        task = await ctx.next_task(timeout=30)
        ctx.log.info("working", n=1)
        ctx.metric("depth", 2)
        ctx.alert("look at me", severity="warning", rule="mine")
        await ctx.llm("hi", max_tokens=5)
        await task.done({"ok": True})
        os._exit(3)
"""


async def test_every_hook_fires_with_its_arguments(fleet_factory):
    f = await fleet_factory(
        """
        [[agent]]
        name = "hooked"
        run = "agents.hooked:run"
        [agent.tasks]
        kinds = ["job"]
        [agent.restart]
        mode = "never"
        """,
        {"agents/hooked.py": AGENT},
    )
    got: dict[str, list[tuple[Any, ...]]] = {h.name: [] for h in dataclasses.fields(Hooks)}
    for name, calls in got.items():
        getattr(f.sup.hooks, name).append(lambda *args, calls=calls: calls.append(args))

    await f.call("task_add", kind="job")
    await f.events.state("hooked", "crashed")
    await f.sup.apply_book(load_book(f.dir))

    assert all(got.values()), {k: len(v) for k, v in got.items()}
    assert any(inst.name == "hooked" and isinstance(prev, AgentState) for inst, prev in got["on_state"])
    assert [(inst.name, rc) for inst, rc in got["on_exit"]] == [("hooked", 3)]
    assert ("INFO", "working n=1") in [(level, text) for _, level, text in got["on_log"]]
    assert [(name, value) for _, name, value in got["on_metric"]] == [("depth", 2.0)]
    assert [d["rule"] for _, d in got["on_agent_alert"]] == ["mine"]
    assert all(isinstance(rec, UsageRecord) for (rec,) in got["on_usage"])
    assert [book.content_hash for (book,) in got["on_policy"]] == [f.sup.book.content_hash]
    assert {d["state"] for agent, d in got["on_task"]} >= {"queued", "leased", "done"}
