"""Terminal agents end to end: a pty held by the supervisor, ``fleet attach`` from a real terminal (tmux)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux"),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pty agents are tested on Linux"),
]

ROOT = Path(__file__).resolve().parents[2]

TERM_AGENT = """\
import os, sys
size = os.get_terminal_size()
print("isatty", sys.stdin.isatty(), sys.stdout.isatty(), f"{size.columns}x{size.lines}", os.environ["TERM"], flush=True)
while True:
    line = input("> ")
    size = os.get_terminal_size()
    print(f"you said {line} at {size.columns}x{size.lines}", flush=True)
"""


class Tmux:
    """A private tmux server (its own socket), so a test never touches anyone's sessions."""

    def __init__(self) -> None:
        self.socket = f"fleet-test-{uuid.uuid4().hex[:8]}"

    def run(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=False).stdout

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "t")

    async def until(self, pred: Callable[[str], bool], timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            if pred(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"screen never matched; it shows:\n{text}")
            await asyncio.sleep(0.05)  # polling a screen we do not own: there is no event to await

    def kill(self) -> None:
        self.run("kill-server")


async def test_attach_to_a_tty_agent_types_resizes_detaches_and_refuses_non_tty(fleet_factory, tmp_path):
    f = await fleet_factory(
        """
        [[agent]]
        name = "term"
        command = ["python", "agent.py"]
        tty = true
        tty_cols = 90
        tty_rows = 25

        [[agent]]
        name = "plain"
        command = ["sleep", "600"]
        """,
        {"agent.py": TERM_AGENT},
    )
    first = await f.events.wait_for(lambda e: e["event"] == "logs" and "isatty" in e["data"]["text"])
    # A terminal of the configured size, TERM set, and CR LF logged as LF.
    # A logs event carries the complete lines of one read: the prompt may have come with it.
    assert first["data"]["text"].split("\n")[0] == "isatty True True 90x25 xterm-256color"
    assert "\r" not in first["data"]["text"]
    a = await f.wait_status("term", lambda a: a["state"] == "waiting")
    assert a["tty"] is True and a["reason"] == ">"

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = f"{sys.executable} -m fleet.cli -C {f.dir} attach term; echo EXIT=$?; sleep 30"
    tmux = Tmux()
    try:
        tmux.run("new-session", "-d", "-s", "t", "-x", "100", "-y", "30", "-e", f"PYTHONPATH={env['PYTHONPATH']}", cmd)
        # Attached: the replay shows what it printed, and the new window size reached it.
        await tmux.until(lambda s: "[attached to term" in s and "isatty True True 90x25" in s)
        tmux.run("send-keys", "-t", "t", "hello", "Enter")
        screen = await tmux.until(lambda s: "you said hello at 100x30" in s)
        assert "> hello" in screen  # typed keys echoed by the agent's terminal
        # A second attachment watches read-only: its keys go nowhere.
        reader, writer = await asyncio.open_unix_connection(str(f.runtime.attach_server.path))
        writer.write(json.dumps({"agent": "term", "cols": 50, "rows": 10, "write": True}).encode() + b"\n")
        assert json.loads(await reader.readline())["mode"] == "ro"
        writer.write(struct.pack("!BH", 0, 8) + b"ignored\r" + struct.pack("!BHH", 1, 50, 10))
        await writer.drain()
        tmux.run("resize-window", "-t", "t", "-x", "80", "-y", "20")
        tmux.run("send-keys", "-t", "t", "again", "Enter")
        await tmux.until(lambda s: "you said again at 80x20" in s)
        watched = await reader.readuntil(b"you said again at 80x20")
        assert b"you said hello" in watched and b"ignored" not in watched
        writer.close()
        tmux.run("send-keys", "-t", "t", "C-]")
        screen = await tmux.until(lambda s: "EXIT=0" in s)
        assert "[detached from term; it keeps running]" in screen
    finally:
        tmux.kill()
    a = await f.agent("term")
    assert a["state"] in ("running", "waiting") and a["pid"]
    # Lines, not events: the echo of the typed line and the agent's answer may come in one read.
    logged = "".join(e["data"]["text"] for e in f.events.events
                     if e["event"] == "logs" and e["data"]["agent"] == "term")
    assert "you said hello at 100x30" in logged.splitlines()
    attach = await f.events.wait_for(lambda e: e["event"] == "audit" and e["data"]["action"] == "attach")
    assert attach["data"]["target"] == "term" and attach["data"]["details"]["mode"] == "rw"

    # Pause and resume work as for any agent; stop ends it.
    await f.call("pause", names=["term"])
    await f.events.state("term", "paused")
    await f.call("resume", names=["term"])
    await f.wait_status("term", lambda a: a["state"] in ("running", "waiting"))

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "fleet.cli", "-C", str(f.dir), "attach", "plain",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )
    _, err = await proc.communicate()
    assert proc.returncode == 1
    assert "plain is not a terminal agent: `fleet logs -f plain` is the way" in err.decode()
    await f.call("stop", names=["term"])
    await f.events.state("term", "stopped")
