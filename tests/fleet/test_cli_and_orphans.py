"""``fleet run`` as a real process: the CLI against it, and no orphans however it ends."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.conftest import write_fleet

FLEET = [sys.executable, "-m", "fleet.cli"]

ORPHAN_FLEET = """
[fleet]
name = "orphans"

[[agent]]
name = "sdk"
run = "agents.spin:run"

[[agent]]
name = "tree"
# A child and a grandchild in the agent's group.
command = ["sh", "-c", "sh -c 'sleep 1000' & sleep 1000 & echo tree-up; wait"]

[[agent]]
name = "escapee"
# A child that leaves the agent's process group and session.
command = ["sh", "-c", "setsid sleep 1000 & echo escapee-up; wait"]
"""

SPIN = """
async def run(ctx):
    print("sdk-up", flush=True)
    while True:
        await ctx.sleep(1)
"""


def fleet_cmd(d: Path, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*FLEET, "-C", str(d), *args], capture_output=True, text=True, timeout=timeout)


def wait_until(pred, timeout: float = 20.0, what: str = "condition") -> None:
    """Poll an external condition (another process's state) with a deadline."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def fleet_processes(token_pids: list[int]) -> list[int]:
    return [p for p in token_pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]


@pytest.fixture
def running_fleet(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[bytes]]]:
    d = write_fleet(tmp_path / "f", ORPHAN_FLEET, {"agents/spin.py": SPIN})
    proc = subprocess.Popen([*FLEET, "-C", str(d), "run", "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def ready() -> bool:
        r = fleet_cmd(d, "status", "--json")
        if r.returncode != 0:
            return False
        st = json.loads(r.stdout)
        return bool(st["agents"]) and all(a["state"] == "running" for a in st["agents"]) and all(
            a["last_line"].endswith("-up") for a in st["agents"]
        )

    wait_until(ready, 30, "the fleet to come up")
    yield d, proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def descendants_by_token(supervisor_pid: int) -> list[int]:
    """Every process carrying the supervisor's token (agents, children, escapees)."""
    token = None
    found = []
    for p in psutil.process_iter(["pid", "environ"]):
        env = p.info.get("environ") or {}
        if env.get("FLEET_SUPERVISOR_TOKEN") and psutil.Process(p.pid).ppid() == supervisor_pid:
            token = env["FLEET_SUPERVISOR_TOKEN"]
    for p in psutil.process_iter(["pid", "environ"]):
        env = p.info.get("environ") or {}
        if token and env.get("FLEET_SUPERVISOR_TOKEN") == token:
            found.append(p.pid)
    return found


def test_sigkill_of_the_supervisor_leaves_no_orphans(running_fleet):
    d, proc = running_fleet
    pids = descendants_by_token(proc.pid)
    # sdk agent, tree: sh + sh + 2 sleeps, escapee: sh + sleep
    assert len(pids) >= 7, pids
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    t0 = time.monotonic()
    wait_until(lambda: not fleet_processes(pids), 2.0, "every agent process to be gone")
    assert time.monotonic() - t0 < 2.0
    r = fleet_cmd(d, "status")
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "no fleet is running" in r.stderr


def test_sigterm_stops_every_agent_and_exits_zero(running_fleet):
    d, proc = running_fleet
    pids = descendants_by_token(proc.pid)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0
    assert not fleet_processes(pids)
    assert not (d / ".fleet" / "control.sock").exists()


def test_cli_controls_a_running_fleet(running_fleet):
    d, _ = running_fleet
    r = fleet_cmd(d, "status")
    assert r.returncode == 0 and "tree" in r.stdout and "running" in r.stdout
    r = fleet_cmd(d, "pause", "tree", "sdk")
    assert r.returncode == 0 and r.stdout.strip() == "paused: tree, sdk"
    st = json.loads(fleet_cmd(d, "status", "--json").stdout)
    assert {a["name"]: a["state"] for a in st["agents"]}["tree"] == "paused"
    assert st["policy_version"] >= 1 and st["fleet"] == "orphans"
    assert fleet_cmd(d, "resume", "--all").returncode == 0
    r = fleet_cmd(d, "restart", "escapee")
    assert r.returncode == 0
    r = fleet_cmd(d, "stop", "nope")
    assert r.returncode == 1 and "no agent named 'nope'" in r.stderr
    r = fleet_cmd(d, "logs", "tree", "-n", "5")
    assert "tree-up" in r.stdout
    r = fleet_cmd(d, "run")
    assert r.returncode == 1 and "already running" in r.stderr


@pytest.mark.parametrize("cmd", [["status"], ["pause", "--all"], ["resume", "x"], ["restart", "x"],
                                 ["stop", "x"], ["start", "x"], ["approvals"]])
def test_commands_without_a_fleet_say_so_and_exit_2(tmp_path, cmd):
    d = write_fleet(tmp_path / "idle", '[[agent]]\nname = "x"\ncommand = ["true"]\n')
    r = fleet_cmd(d, *cmd)
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and "no fleet is running" in r.stderr


def test_logs_work_without_a_running_fleet_and_never_print_raw_escapes(tmp_path):
    d = write_fleet(
        tmp_path / "f",
        """
        [[agent]]
        name = "esc"
        command = ["printf", "\\\\033[2J\\\\033]0;title\\\\007hello \\\\033[31mred\\\\033[0m %s\\\\n",
                   "c1\u0085 bidi\u202e"]
        [agent.restart]
        mode = "never"
        """,
    )
    proc = subprocess.Popen([*FLEET, "-C", str(d), "run", "-q"])
    wait_until(lambda: "exited" in fleet_cmd(d, "status").stdout, 30, "the agent to exit")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0
    r = fleet_cmd(d, "logs", "esc")
    assert r.returncode == 0
    assert "hello" in r.stdout and "red" in r.stdout
    assert "\x1b" not in r.stdout and "\x07" not in r.stdout
    r = fleet_cmd(d, "logs", "esc", "--json")
    line = next(json.loads(x) for x in r.stdout.splitlines() if '"stdout"' in x)
    assert line["seq"] >= 1 and line["stream"] == "stdout"
    # JSON is cleaned too: no C1 control (U+0085) nor bidi override (U+202E) reaches the reader raw.
    assert line["text"] == "hello red c1\ufffd bidi", line
    assert "\x85" not in r.stdout and "\u202e" not in r.stdout and "\x1b" not in r.stdout


CRASHING_SUPERVISOR = """
import asyncio, sys
from pathlib import Path
from fleet.runtime import FleetRuntime

async def main():
    rt = FleetRuntime(Path(sys.argv[1]), watch=False)
    sup = await rt.start()
    while not all(i.state.value == "running" for i in sup.instances.values()):
        await asyncio.sleep(0.05)
    print(" ".join(str(i.pid) for i in sup.instances.values()), flush=True)
    raise RuntimeError("supervisor bug")

asyncio.run(main())
"""


def test_a_supervisor_dying_of_an_exception_leaves_no_orphans(tmp_path):
    d = write_fleet(tmp_path / "f", ORPHAN_FLEET, {"agents/spin.py": SPIN})
    proc = subprocess.Popen([sys.executable, "-c", CRASHING_SUPERVISOR, str(d)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    first = proc.stdout.readline()
    agent_pids = [int(x) for x in first.split()]
    assert len(agent_pids) == 3
    children = []
    for pid in agent_pids:
        children += [c.pid for c in psutil.Process(pid).children(recursive=True)]
    _, err = proc.communicate(timeout=30)
    assert proc.returncode != 0 and "supervisor bug" in err
    t0 = time.monotonic()
    wait_until(lambda: not fleet_processes(agent_pids + children), 2.0, "every agent process to be gone")
    assert time.monotonic() - t0 < 2.0


def test_the_shutdown_op_answers_then_stops_the_fleet(running_fleet):
    import asyncio

    from fleet.control.client import SocketClient

    d, proc = running_fleet

    async def shutdown() -> dict:
        client = await SocketClient.connect(d / ".fleet" / "control.sock")
        try:
            return await client.call("shutdown")
        finally:
            await client.close()

    assert asyncio.run(shutdown()) == {"stopping": True}
    assert proc.wait(timeout=20) == 0
