"""The task queue end to end: SDK agents in real processes, over the real socket, with a real store."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys

WORKER = """
    from fleet.agent import FleetError

    async def run(ctx):
        while True:
            task = await ctx.next_task()
            print("GOT", task.id, task.kind, task.attempt, task.priority, flush=True)
            if (task.payload or {}).get("hang") and task.attempt == 1:
                await ctx.sleep(3600)  # killed here, mid-task
            await task.done({"by": ctx.name})
            print("DONE", task.id, flush=True)
            try:  # a second acknowledgement, behind the SDK's back
                await ctx._channel.call("task_done", id=task.id, result="again")
                print("ACKED-TWICE", task.id, flush=True)
            except FleetError as exc:
                print("REJECTED", task.id, exc, flush=True)
"""

FILES = {"agents/worker.py": WORKER}


def task_events(f, task_id: int) -> list[dict]:
    return [e["data"] for e in f.events.events if e["event"] == "task" and e["data"]["id"] == task_id]


def logs(f) -> str:
    return "".join(e["data"]["text"] for e in f.events.events if e["event"] == "logs")


async def test_a_task_survives_its_agent_being_killed_and_is_done_exactly_once(fleet_factory):
    f = await fleet_factory(
        """
        [fleet]
        task_max_attempts = 3
        [[agent]]
        name = "worker"
        run = "agents.worker:run"
        [agent.tasks]
        kinds = ["job"]
        [agent.restart]
        backoff_initial_s = 0.05
        """,
        FILES,
    )
    await f.events.state("worker", "running")
    res = await f.call("task_add", kind="job", payload={"hang": True}, priority=3)
    tid = res["id"]
    await f.events.wait_for(lambda e: e["event"] == "logs" and f"GOT {tid} job 1 3" in e["data"]["text"])
    pid = (await f.agent("worker"))["pid"]
    os.killpg(pid, signal.SIGKILL)
    await f.events.wait_for(lambda e: e["event"] == "task" and e["data"]["id"] == tid and e["data"]["state"] == "done")
    await f.events.wait_for(lambda e: e["event"] == "logs" and f"REJECTED {tid}" in e["data"]["text"])
    evs = task_events(f, tid)
    assert [(d["state"], d["attempt"]) for d in evs] == [
        ("queued", 0),
        ("leased", 1),
        ("queued", 1),
        ("leased", 2),
        ("done", 2),
    ]
    assert "killed by SIGKILL" in evs[2]["reason"]
    assert [d["agent"] for d in evs[1:]] == ["worker"] * 4
    text = logs(f)
    assert f"ACKED-TWICE {tid}" not in text and "not leased to this run of worker" in text
    [t] = (await f.call("tasks"))["tasks"]
    assert (t["state"], t["attempt"], t["result"], t["agent"]) == ("done", 2, {"by": "worker"}, "worker")
    conn = sqlite3.connect(f.runtime.store.path)
    rows = conn.execute(
        "SELECT attempt, outcome FROM task_attempts WHERE task_id = ? ORDER BY attempt", (tid,)
    ).fetchall()
    conn.close()
    assert rows == [(1, "lost"), (2, "done")]


async def test_a_task_is_dead_after_its_last_attempt_with_the_reason(fleet_factory):
    crasher = """
        import os
        async def run(ctx):
            task = await ctx.next_task()
            print("GOT", task.id, task.attempt, flush=True)
            os._exit(3)
    """
    f = await fleet_factory(
        """
        [fleet]
        task_max_attempts = 2
        [[agent]]
        name = "crasher"
        run = "agents.c:run"
        [agent.tasks]
        kinds = ["job"]
        [agent.restart]
        backoff_initial_s = 0.05
        """,
        {"agents/c.py": crasher},
    )
    tid = (await f.call("task_add", kind="job"))["id"]
    dead = await f.events.wait_for(lambda e: e["event"] == "task" and e["data"]["state"] == "dead")
    assert dead["data"]["id"] == tid and dead["data"]["attempt"] == 2
    assert "exit code 3" in dead["data"]["reason"] and "2 attempts" in dead["data"]["reason"]
    alert = await f.events.wait_for(lambda e: e["event"] == "alert" and e["data"]["rule"] == "task_dead")
    assert alert["data"]["agent"] == "crasher" and f"task {tid}" in alert["data"]["message"]
    # Persisted: the event history has every transition.
    await f.runtime.store.flush()
    evs = (await f.call("events", kinds=["task"]))["events"]
    assert [e["data"]["state"] for e in evs if e["data"]["id"] == tid] == [
        "queued",
        "leased",
        "queued",
        "leased",
        "dead",
    ]


RECORDER = """
    async def run(ctx):
        while True:
            task = await ctx.next_task()
            print("GOT", ctx.name, task.kind, task.payload["n"], flush=True)
            await task.done()
"""


async def test_allocation_by_kind_then_priority(fleet_factory):
    f = await fleet_factory(
        """
        [[agent]]
        name = "mailer"
        run = "agents.r:run"
        [agent.tasks]
        kinds = ["email"]
        [[agent]]
        name = "reporter"
        run = "agents.r:run"
        [agent.tasks]
        kinds = ["report"]
        """,
        {"agents/r.py": RECORDER},
    )
    await f.events.state("mailer", "running")
    await f.call("stop", names=["reporter"])
    for n, (kind, prio) in enumerate([("report", 1), ("email", 0), ("report", 5), ("report", 3), ("email", 9)]):
        await f.call("task_add", kind=kind, payload={"n": n}, priority=prio)
    await f.call("start", names=["reporter"])
    await f.events.wait_for(
        lambda e: (
            e["event"] == "task"
            and e["data"]["state"] == "done"
            and sum(1 for x in f.events.events if x["event"] == "task" and x["data"]["state"] == "done") == 5
        )
    )
    got = [line.split()[1:] for line in logs(f).splitlines() if line.startswith("GOT")]
    assert [g for g in got if g[0] == "reporter"] == [
        ["reporter", "report", "2"],
        ["reporter", "report", "3"],
        ["reporter", "report", "0"],
    ]
    assert sorted(g[2] for g in got if g[0] == "mailer") == ["1", "4"]
    assert all(g[1] == "email" for g in got if g[0] == "mailer")


async def test_editing_the_allocation_policy_redirects_the_next_tasks_live(fleet_factory):
    f = await fleet_factory(
        """
        [[agent]]
        name = "a"
        run = "agents.r:run"
        [agent.tasks]
        kinds = ["x"]
        [[agent]]
        name = "b"
        run = "agents.r:run"
        [agent.tasks]
        kinds = ["y"]
        """,
        {"agents/r.py": RECORDER},
        watch=True,
    )
    await f.events.state("a", "running")
    await f.events.state("b", "running")

    async def goes_to(n: int) -> str:
        tid = (await f.call("task_add", kind="x", payload={"n": n}))["id"]
        ev = await f.events.wait_for(
            lambda e: e["event"] == "task" and e["data"]["id"] == tid and e["data"]["state"] == "done"
        )
        return ev["data"]["agent"]

    assert await goes_to(1) == "a"
    await f.call("set_override", target="b", key="tasks.kinds", value=["x"])
    await f.call("set_override", target="a", key="tasks.kinds", value=[])
    await f.events.wait_for(lambda e: e["event"] == "policy_applied" and not f.sup.instances["a"].policy.tasks.kinds)
    assert [await goes_to(n) for n in (2, 3)] == ["b", "b"]
    states = f.events.states("a") + f.events.states("b")
    assert states.count("starting") == 2  # nothing was restarted


async def test_cli_task_add_and_tasks_json(fleet_factory):
    import asyncio

    f = await fleet_factory(
        '[[agent]]\nname = "idle"\ncommand = ["sleep", "60"]\n',
        {},
    )

    async def cli(*args: str) -> subprocess.CompletedProcess[str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "fleet.cli", "-C", str(f.dir), *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        out, err = await proc.communicate()
        return subprocess.CompletedProcess(args, proc.returncode or 0, out.decode(), err.decode())

    r = await cli("task", "add", "review", "--priority", "4", "--payload", '{"doc": 7}')
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("queued task #1 (review, priority 4)")
    r = await cli("task", "add", "review", "--payload", "{broken")
    assert r.returncode == 1 and "not valid JSON" in r.stderr
    r = await cli("tasks", "--json")
    data = json.loads(r.stdout)
    [t] = data["tasks"]
    assert (t["kind"], t["priority"], t["state"], t["payload"]) == ("review", 4, "queued", {"doc": 7})
    assert data["stats"]["queued"] == 1
    r = await cli("tasks")
    assert "review" in r.stdout and "queued" in r.stdout
    audit = [e for e in f.events.events if e["event"] == "audit" and e["data"]["action"] == "task_add"]
    assert audit and audit[0]["data"]["origin"] == "cli"
