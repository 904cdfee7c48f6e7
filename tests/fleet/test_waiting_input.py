"""Agents waiting for their operator: the ``waiting`` state seen from /proc, ``send``, the alert."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fleet.errors import FleetError

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="waiting is read from /proc")


async def cli(fleet_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``fleet -C DIR ARGS`` without blocking the loop the fleet under test runs on."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "fleet.cli", "-C", str(fleet_dir), *args,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    out, err = await proc.communicate()
    return subprocess.CompletedProcess(args, proc.returncode or 0, out.decode(), err.decode())


async def test_a_shell_read_goes_waiting_and_runs_again_after_send(fleet_factory):
    f = await fleet_factory(
        """
        [[agent]]
        name = "asker"
        command = ["sh", "-c", "printf 'Which region first? '; read x; echo got $x; exec sleep 60"]
        """
    )
    t0 = time.monotonic()
    a = await f.wait_status("asker", lambda a: a["state"] == "waiting", timeout=10)
    detected = time.monotonic() - t0
    # The prompt had no newline: it is flushed as the question.
    assert a["reason"] == "Which region first?" and a["last_line"] == "Which region first? "
    assert a["waiting_since"] and a["input"] == "open"
    assert detected < 5
    res = await f.call("send", name="asker", text="emea", by="cli")
    assert res["waiting"] is True and res["bytes"] == 5
    await f.events.wait_for(lambda e: e["event"] == "logs" and e["data"]["text"] == "got emea\n")
    await f.wait_status("asker", lambda a: a["state"] == "running", timeout=5)
    # The operator's input is in the agent's log, stream input, and audited with its text.
    shown = await f.events.wait_for(lambda e: e["event"] == "logs" and e["data"]["stream"] == "input")
    assert shown["data"]["text"] == "⌨ cli: emea\n"
    audit = await f.events.wait_for(lambda e: e["event"] == "audit" and e["data"]["action"] == "send")
    assert audit["data"]["target"] == "asker" and audit["data"]["origin"] == "test"
    assert audit["data"]["details"]["text"] == "emea"
    states = f.events.states("asker")
    assert states[-2:] == ["waiting", "running"]


async def test_python_input_and_a_child_reader_and_eof(fleet_factory):
    f = await fleet_factory(
        """
        [[agent]]
        name = "py"
        command = ["python", "-u", "-c", "n = input('name? '); print('hello', n); import time; time.sleep(60)"]

        [[agent]]
        name = "parent"
        command = ["sh", "-c", "echo start; sh -c 'read y; echo child got $y'; cat; echo eof seen; sleep 60"]
        """
    )
    await f.wait_status("py", lambda a: a["state"] == "waiting", timeout=10)
    await f.call("send", name="py", text="ada")
    await f.events.wait_for(lambda e: e["event"] == "logs" and e["data"]["text"] == "hello ada\n")
    await f.wait_status("py", lambda a: a["state"] == "running", timeout=5)

    # The reader is a grandchild (sh -> sh -> read): still the agent's input.
    await f.wait_status("parent", lambda a: a["state"] == "waiting", timeout=10)
    await f.call("send", name="parent", text="x")
    await f.events.wait_for(lambda e: e["event"] == "logs" and e["data"]["text"] == "child got x\n")
    # Then `cat` reads until end of input.
    await f.wait_status("parent", lambda a: a["state"] == "waiting", timeout=10)
    res = await f.call("send", name="parent", eof=True)
    assert res["eof"] is True
    await f.events.wait_for(lambda e: e["event"] == "logs" and e["data"]["text"] == "eof seen\n")
    a = await f.wait_status("parent", lambda a: a["state"] == "running", timeout=5)
    assert a["input"] == "closed"
    with pytest.raises(FleetError, match="input was closed"):
        await f.call("send", name="parent", text="more")


async def test_send_refusals_and_writing_to_a_busy_agent(fleet_factory):
    f = await fleet_factory(
        """
        [[agent]]
        name = "busy"
        command = ["sh", "-c", "echo busy; sleep 1000"]

        [[agent]]
        name = "gone"
        command = ["true"]
        [agent.restart]
        mode = "never"
        """
    )
    await f.wait_status("gone", lambda a: a["state"] == "exited")
    with pytest.raises(FleetError, match="gone is exited: no process reads its input"):
        await f.call("send", name="gone", text="hi")
    await f.events.wait_for(lambda e: e["event"] == "logs" and e["data"]["text"] == "busy\n")
    with pytest.raises(FleetError, match=r"control characters \(\\x1b\)"):
        await f.call("send", name="busy", text="\x1b[2J")
    res = await f.call("send", name="busy", text="read ahead")
    assert res["waiting"] is False and res["bytes"] == 11
    res = await f.call("send", name="busy", text="\x03", raw=True)
    assert res["bytes"] == 1


async def test_waiting_alert_fires_and_silence_does_not(fleet_factory):
    f = await fleet_factory(
        """
        [[agent]]
        name = "stuck"
        command = ["sh", "-c", "echo 'Proceed? [y/N]'; read x; echo ok; exec sleep 60"]
        [agent.alerts]
        silence_s = 0.5
        waiting_s = 1
        """
    )
    alert = await f.events.wait_for(lambda e: e["event"] == "alert" and e["data"]["rule"] == "waiting", timeout=15)
    assert alert["data"]["agent"] == "stuck" and "Proceed? [y/N]" in alert["data"]["message"]
    assert not [e for e in f.events.events if e["event"] == "alert" and e["data"]["rule"] == "stalled"]
    await f.call("send", name="stuck", text="y")
    cleared = await f.events.wait_for(lambda e: e["event"] == "alert_cleared" and e["data"]["rule"] == "waiting")
    assert cleared["data"]["agent"] == "stuck"


ASKER = """
    async def run(ctx):
        answer = await ctx.ask("Which region first?", choices=["emea", "apac", "amer"])
        print("region", answer, flush=True)
        late = await ctx.ask("Anything else?", timeout=0.5)
        print("late", late, flush=True)
        await ctx.sleep(3600)
"""


async def test_ctx_ask_waits_is_listed_answered_from_the_cli_and_times_out(fleet_factory, tmp_path):
    f = await fleet_factory(
        '[[agent]]\nname = "sdk"\nrun = "agents.ask:run"\n',
        {"agents/__init__.py": "", "agents/ask.py": ASKER},
    )
    a = await f.wait_status("sdk", lambda a: a["state"] == "waiting", timeout=15)
    assert a["reason"] == "Which region first?"
    [q] = (await f.call("questions"))["questions"]
    assert (q["agent"], q["question"], q["choices"], q["status"]) == ("sdk", "Which region first?",
                                                                     ["emea", "apac", "amer"], "pending")
    assert q["timeout_s"] == 900  # tools.approval_timeout_s
    with pytest.raises(FleetError, match="answer one of: emea, apac, amer"):
        await f.call("answer", id=q["id"], text="mars")
    listed = await cli(f.dir, "questions")
    assert f"#{q['id']}  sdk" in listed.stdout and "Which region first?  [emea | apac | amer]" in listed.stdout
    out = await cli(f.dir, "answer", str(q["id"]), "APAC")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"answered #{q['id']} (sdk): apac"
    await f.events.wait_for(lambda e: e["event"] == "logs" and e["data"]["text"] == "region apac\n")
    # The second question times out on its own 0.5 s: None, and the question is closed as expired.
    await f.events.wait_for(lambda e: e["event"] == "logs" and e["data"]["text"] == "late None\n")
    expired = await f.events.wait_for(lambda e: e["event"] == "question" and e["data"]["status"] == "expired")
    assert expired["data"]["answered_by"] == "timeout"
    await f.wait_status("sdk", lambda a: a["state"] == "running")
    assert (await f.call("questions"))["questions"] == []
    audit = await f.events.wait_for(lambda e: e["event"] == "audit" and e["data"]["action"] == "answer")
    assert audit["data"]["origin"] == "cli" and audit["data"]["details"]["text"] == "APAC"
