"""The morning report on a recorded fleet run: from the running fleet, and from the file with none running."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from fleet.report import build, percentile, render_md
from fleet.store import open_readonly

WORKER = """
    async def run(ctx):
        while True:
            task = await ctx.next_task()
            await ctx.llm("work on " + task.kind, max_tokens=20)
            if task.payload.get("flaky") and task.attempt == 1:
                await task.fail("flaked")
            else:
                await task.done({"ok": True})
"""

ASKER = """
    async def run(ctx):
        answer = await ctx.approve("publish_post", {"title": "hi"})
        print("ANSWER", answer.approved, flush=True)
        ctx.alert("something odd", severity="error", rule="odd")
        await ctx.sleep(3600)
"""

FLEET = """
    [fleet]
    name = "nightly"
    [[agent]]
    name = "worker"
    run = "agents.w:run"
    [agent.tasks]
    kinds = ["job"]
    [[agent]]
    name = "asker"
    run = "agents.a:run"
    [[agent]]
    name = "crashy"
    command = ["sh", "-c", "echo boom; exit 1"]
    [agent.restart]
    backoff_initial_s = 0.05
    max_restarts = 1
"""


async def cli(d: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "fleet.cli", "-C", str(d), *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await proc.communicate()
    return subprocess.CompletedProcess(args, proc.returncode or 0, out.decode(), err.decode())


async def test_report_of_a_recorded_run(fleet_factory, tmp_path: Path):
    f = await fleet_factory(FLEET, {"agents/w.py": WORKER, "agents/a.py": ASKER})
    ids = [(await f.call("task_add", kind="job", payload={"flaky": n == 0}))["id"] for n in range(3)]
    pending = await f.events.wait_for(lambda e: e["event"] == "approval" and e["data"]["status"] == "pending")
    await f.call("approve", id=pending["data"]["id"], by="alice")
    await f.events.wait_for(lambda e: e["event"] == "alert" and e["data"]["rule"] == "odd")
    await f.events.state("crashy", "crash-loop")
    for tid in ids:
        await f.events.wait_for(
            lambda e, tid=tid: e["event"] == "task" and e["data"]["id"] == tid and e["data"]["state"] == "done"
        )

    # From the running fleet, over the control socket.
    rep = (await f.call("report"))["report"]
    assert rep["fleet"] == "nightly" and len(rep["runs"]) == 1
    agents = {a["name"]: a for a in rep["agents"]}
    w = agents["worker"]
    assert (w["tasks_done"], w["tasks_failed"], w["success_rate"]) == (3, 1, 0.75)
    assert w["llm_calls"] == 4 and w["tokens"] > 0 and w["cost_usd"] > 0
    assert w["cost_per_success_usd"] == round(w["cost_usd"] / 3, 6)
    assert 0 < w["task_latency_p50_s"] <= w["task_latency_p95_s"]
    assert w["llm_latency_p95_s"] is not None
    c = agents["crashy"]
    assert (c["runs"], c["restarts"], c["crashes"], c["crash_loops"]) == (2, 1, 2, 1)
    assert c["last_state"] == "crash-loop"
    rules = {(a["agent"], a["rule"]) for a in rep["alerts"]}
    assert {("asker", "odd"), ("crashy", "crash_loop")} <= rules
    [ap] = rep["approvals"]
    assert (ap["agent"], ap["action"], ap["status"], ap["decided_by"]) == ("asker", "publish_post", "approved", "alice")
    assert rep["costliest"][0]["name"] == "worker" and rep["slowest"][0]["name"] == "worker"
    assert rep["tasks"]["now"] == {"done": 3}
    assert rep["operator_actions"] == {"task_add (test)": 3, "approve (test)": 1}
    md = (await f.call("report", format="md"))["text"]
    assert md.startswith("# Fleet report: nightly")
    assert "| worker | running | 1 | 0 | 0 | 3 | 1 | 75% |" in md
    assert "#1 asker: `publish_post` **approved** by alice" in md
    assert "**error** `odd` on asker" in md

    # The fleet stops; the report is read from the file alone.
    await f.runtime.stop()
    r = await cli(f.dir, "status")
    assert r.returncode == 2
    r = await cli(f.dir, "report", "--format", "json")
    assert r.returncode == 0, r.stderr
    offline = json.loads(r.stdout)
    assert offline["fleet"] == "nightly" and offline["since"] == rep["since"]
    assert {a["name"]: a["tasks_done"] for a in offline["agents"]}["worker"] == 3
    assert {a["name"]: a["last_state"] for a in offline["agents"]}["worker"] == "stopped"
    out = tmp_path / "morning.md"
    r = await cli(f.dir, "report", "-o", str(out), "--since", "1h")
    assert r.returncode == 0, r.stderr
    text = out.read_text()
    assert "## Alerts" in text and "## Approvals" in text and "## Costliest agents" in text
    assert "1. worker:" in text.split("## Costliest agents")[1]
    r = await cli(f.dir, "report", "--since", "next tuesday")
    assert r.returncode == 1 and "cannot read time" in r.stderr
    r = await cli(f.dir, "tasks", "--state", "done")
    assert r.returncode == 0 and "no fleet running" in r.stdout and r.stdout.count(" done ") == 3


async def test_the_default_window_starts_at_the_last_run(fleet_factory):
    toml = '[[agent]]\nname = "idle"\ncommand = ["sleep", "60"]\n'
    f1 = await fleet_factory(toml, name="same")
    await f1.events.state("idle", "running")
    await f1.runtime.stop()
    f2 = await fleet_factory(toml, name="same")
    await f2.events.state("idle", "running")
    conn = open_readonly(f2.runtime.store.path)
    try:
        await f2.runtime.store.flush()
        runs = [r[0] for r in conn.execute("SELECT ts FROM events WHERE kind = 'run' ORDER BY ts")]
        assert len(runs) == 2
        rep = build(conn)
        assert rep["since"] == runs[1]
        assert {a["name"]: a["runs"] for a in rep["agents"]} == {"idle": 1}
        both = build(conn, since=runs[0])
        assert {a["name"]: (a["runs"], a["restarts"]) for a in both["agents"]} == {"idle": (2, 0)}
        assert render_md(rep).count("| idle |") == 1
    finally:
        conn.close()


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 50) is None
    assert percentile([3.0], 95) == 3.0
    values = [float(i) for i in range(1, 101)]
    assert percentile(values, 50) == 50.0 and percentile(values, 95) == 95.0
    assert percentile([5.0, 1.0, 3.0], 50) == 3.0


async def test_repeats_of_an_open_alert_are_reported_from_its_clearing(tmp_path: Path) -> None:
    from fleet.records import Event
    from fleet.store import Store

    store = await Store.open(tmp_path / "fleet.db")
    try:
        await store.add_event(Event("run", None, {"fleet": "f"}, 1000.0))
        alert = {"rule": "depth", "severity": "warning", "message": "deep", "count": 1}
        await store.add_event(Event("alert", "a", alert, 1001.0))
        await store.add_event(Event("alert_cleared", "a", {**alert, "count": 4, "why": "quiet"}, 1100.0))
        await store.add_event(Event("alert", "b", {**alert, "severity": "error"}, 1002.0))
    finally:
        await store.close()
    conn = open_readonly(tmp_path / "fleet.db")
    try:
        rep = build(conn, until=2000.0)
    finally:
        conn.close()
    assert rep["since"] == 1000.0
    assert [(a["agent"], a["count"], a["occurrences"], a["cleared"]) for a in rep["alerts"]] == [
        ("b", 1, 1, None),  # errors first
        ("a", 1, 4, 1100.0),
    ]
    md = render_md(rep)
    assert "**warning** `depth` on a (seen 4 times, first" in md
    assert "**error** `depth` on b (first" in md
