"""Agents waiting for their operator: the ``waiting`` state seen from /proc, ``send``, the alert."""

from __future__ import annotations

import sys
import time

import pytest

from fleet.errors import FleetError

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="waiting is read from /proc")


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
