"""The console in a real terminal (tmux), on a real fleet, driven by keys as a person would.

Starts ``fleet`` in a tmux pane, waits until the agent table shows the agent
running, presses ``p`` and checks both the screen and the kernel (the agent's
process is in state T), presses ``r`` and checks the reverse, then quits and
stops the fleet from the quit dialog.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest

from tests.conftest import write_fleet

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


class Tmux:
    def __init__(self, cols: int = 120, rows: int = 32) -> None:
        self.name = f"fleet-e2e-{uuid.uuid4().hex[:8]}"
        subprocess.run(["tmux", "new-session", "-d", "-s", self.name, "-x", str(cols), "-y", str(rows)],
                       check=True)

    def send(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def screen(self) -> str:
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", self.name], capture_output=True, text=True,
                              check=True).stdout

    def wait_for(self, pred, timeout: float = 30.0, what: str = "") -> str:
        """Poll the screen (a terminal offers no event) until ``pred(screen)`` holds."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            if pred(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; screen:\n{text}")
            time.sleep(0.1)

    def kill(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


def _row(screen: str, name: str) -> str:
    return next((line for line in screen.splitlines() if f" {name} " in f" {line} "), "")


def test_pause_and_resume_an_agent_from_the_keyboard(tmp_path: Path):
    d = write_fleet(
        tmp_path / "f",
        """
        [fleet]
        name = "tmuxdemo"

        [[agent]]
        name = "clock"
        command = ["sh", "-c", "while true; do date +tick-%s; sleep 0.2; done"]
        """,
    )
    tmux = Tmux()
    try:
        tmux.send(f"cd {d} && {sys.executable} -m fleet.cli", "Enter")
        screen = tmux.wait_for(lambda s: "running" in _row(s, "clock"), what="clock running")
        assert "tmuxdemo" in screen or "f" in screen
        status = subprocess.run([sys.executable, "-m", "fleet.cli", "-C", str(d), "status", "--json"],
                                capture_output=True, text=True, check=True).stdout
        pid = json.loads(status)["agents"][0]["pid"]
        tmux.send("p")
        tmux.wait_for(lambda s: "paused" in _row(s, "clock"), 10, "clock paused on screen")
        deadline = time.monotonic() + 5
        while psutil.Process(pid).status() != psutil.STATUS_STOPPED:
            assert time.monotonic() < deadline, "process not stopped"
            time.sleep(0.05)
        tmux.send("r")
        tmux.wait_for(lambda s: "running" in _row(s, "clock"), 10, "clock running again")
        assert psutil.Process(pid).status() != psutil.STATUS_STOPPED
        tmux.send("q")
        tmux.wait_for(lambda s: "Stop" in s, 10, "the quit dialog")
        tmux.send("y")
        deadline = time.monotonic() + 20
        while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline, "the fleet was not stopped on quit"
            time.sleep(0.1)
    finally:
        tmux.kill()
        subprocess.run([sys.executable, "-m", "fleet.cli", "-C", str(d), "stop", "--all"], capture_output=True)
