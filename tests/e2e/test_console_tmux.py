"""The console in a real terminal (tmux), on a real fleet, driven by keys as a person would.

Starts ``fleet`` in a tmux pane, waits until the agent table shows the agent
running, presses ``p`` and checks both the screen and the kernel (the agent's
process is in state T), presses ``r`` and checks the reverse, then quits and
stops the fleet from the quit dialog. Then the fleet as a daemon: a terminal
closed under a console detaches it, and consoles in other terminals attach to
the same fleet, two at once.
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
from tests.procstate import stopped

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


class Tmux:
    def __init__(self, cols: int = 120, rows: int = 32) -> None:
        self.name = f"fleet-e2e-{uuid.uuid4().hex[:8]}"
        # A private server (its own socket): it starts with this test's environment, not
        # that of whatever tmux server the machine already runs, and touches no one's sessions.
        self.tmux = ["tmux", "-L", self.name]
        subprocess.run([*self.tmux, "new-session", "-d", "-s", self.name, "-x", str(cols), "-y", str(rows)],
                       check=True)

    def send(self, *keys: str) -> None:
        subprocess.run([*self.tmux, "send-keys", "-t", self.name, *keys], check=True)

    def screen(self) -> str:
        return subprocess.run([*self.tmux, "capture-pane", "-p", "-t", self.name], capture_output=True, text=True,
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
        subprocess.run([*self.tmux, "kill-server"], capture_output=True)


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
        while not stopped(pid):  # stopped, or stopping as it leaves the kernel (see tests.procstate)
            assert time.monotonic() < deadline, "process not stopped"
            time.sleep(0.05)
        tmux.send("r")
        tmux.wait_for(lambda s: "running" in _row(s, "clock"), 10, "clock running again")
        assert psutil.Process(pid).status() != psutil.STATUS_STOPPED
        tmux.send("q")
        tmux.wait_for(lambda s: "Stop fleet (s)" in s and "Detach (d)" in s, 10, "the quit dialog")
        tmux.send("s")
        deadline = time.monotonic() + 20
        while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline, "the fleet was not stopped on quit"
            time.sleep(0.1)
    finally:
        tmux.kill()
        subprocess.run([sys.executable, "-m", "fleet.cli", "-C", str(d), "stop", "--all"], capture_output=True)


def _fleet(d: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fleet.cli", "-C", str(d), *args], capture_output=True, text=True,
                          timeout=60)


def test_a_closed_terminal_detaches_and_other_consoles_attach(tmp_path: Path):
    d = write_fleet(
        tmp_path / "f",
        """
        [fleet]
        name = "overnight"

        [[agent]]
        name = "clock"
        command = ["sh", "-c", "while true; do date +tick-%s; sleep 0.2; done"]

        [[agent]]
        name = "worker"
        command = ["sh", "-c", "while true; do echo working; sleep 0.5; done"]
        """,
    )
    first, second, third = Tmux(80, 24), Tmux(80, 24), Tmux(100, 30)
    try:
        first.send(f"cd {d} && {sys.executable} -m fleet.cli", "Enter")
        first.wait_for(lambda s: "running" in _row(s, "clock") and "running" in _row(s, "worker"), 30,
                       "both agents running in the first console")
        st = json.loads(_fleet(d, "status", "--json").stdout)
        pids = {a["name"]: a["pid"] for a in st["agents"]}
        assert st["daemon"]["started_by"] == "console"
        assert [c["kind"] for c in st["clients"]] == ["console"]
        console_pid = st["clients"][0]["pid"]

        first.kill()  # the terminal goes away, as a closed tab or a dropped SSH connection
        deadline = time.monotonic() + 10
        while psutil.pid_exists(console_pid) and psutil.Process(console_pid).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline, "the console outlived its terminal"
            time.sleep(0.05)
        st = json.loads(_fleet(d, "status", "--json").stdout)
        assert {a["name"]: a["pid"] for a in st["agents"]} == pids  # the same agents, never restarted
        assert all(a["state"] == "running" for a in st["agents"])
        assert st["clients"] == []
        assert "consoles: none attached" in _fleet(d, "status").stdout

        second.send(f"cd {d} && {sys.executable} -m fleet.cli", "Enter")
        third.send(f"{sys.executable} -m fleet.cli -C {d} console", "Enter")
        for t in (second, third):
            t.wait_for(lambda s: "running" in _row(s, "clock") and "running" in _row(s, "worker"), 30,
                       "the agents in a re-attached console")
        st = json.loads(_fleet(d, "status", "--json").stdout)
        assert [c["kind"] for c in st["clients"]] == ["console", "console"]
        assert "consoles: 2 attached" in _fleet(d, "status").stdout

        # Both work: a pause from one shows in the other.
        second.send("p")  # the cursor is on the first row: clock
        third.wait_for(lambda s: "paused" in _row(s, "clock"), 10, "the pause seen by the other console")
        third.send("r")
        second.wait_for(lambda s: "running" in _row(s, "clock"), 10, "the resume seen by the other console")

        # q on an attached console: detach is the default, and the agents keep running.
        second.send("q")
        screen = second.wait_for(lambda s: "Detach (d)" in s, 10, "the quit dialog")
        assert "2 agents are running" in screen and "`fleet` in" in screen
        second.send("Enter")
        second.wait_for(lambda s: "Detached from fleet overnight" in s, 10, "the detach message")
        st = json.loads(_fleet(d, "status", "--json").stdout)
        assert {a["name"]: a["pid"] for a in st["agents"]} == pids

        # `fleet down` from a shell: the remaining console says the fleet stopped and exits.
        r = _fleet(d, "down")
        assert r.returncode == 0 and r.stdout.count("\n") == 1 and "stopped" in r.stdout, r
        third.wait_for(lambda s: "Fleet overnight stopped" in s, 15, "the console closing with its fleet")
        assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
                       for p in pids.values())
    finally:
        for t in (first, second, third):
            t.kill()
        _fleet(d, "down")
