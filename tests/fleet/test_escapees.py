"""Every process an agent starts is stopped with it, however it detaches (issue 22).

A child that calls ``setsid`` leaves the agent's process group; one that also
runs under ``env -i`` carries no fleet token either; a double fork leaves it
an orphan at once. Each isolation the supervisor can use is tried against
``fleet stop NAME`` and against the supervisor's SIGKILL (the watchdog):
cgroups v1 (this machine's controllers), cgroup v2 (here the hybrid's
``unified`` hierarchy, tracking only), and the process tree with the
supervisor as subreaper (``FLEET_CGROUPS=off``).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.conftest import write_fleet
from tests.fleet.test_cli_and_orphans import FLEET, fleet_cmd, wait_until

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc"), reason="Linux process model")


def _fleet_toml(marker: str, double_fork: bool) -> str:
    ghost = f"env -i setsid sleep {marker}1 & "
    if double_fork:
        # The middle process exits at once: its child is an orphan before anyone can look.
        ghost += f"env -i setsid sh -c 'sleep {marker}2 & exit 0'; "
    return f"""
[[agent]]
name = "ghost"
command = ["sh", "-c", "{ghost}echo ghost-up; exec sleep 1000"]

[[agent]]
name = "keeper"
command = ["sh", "-c", "echo keeper-up; exec sleep 1000"]
"""


def _marked(marker: str) -> list[int]:
    out = []
    for p in psutil.process_iter(["pid", "cmdline", "status"]):
        cmd = p.info.get("cmdline") or []
        if any(arg.startswith(marker) for arg in cmd) and p.info.get("status") != psutil.STATUS_ZOMBIE:
            out.append(p.info["pid"])
    return out


def _status(d: Path) -> dict:
    r = fleet_cmd(d, "status", "--json")
    return json.loads(r.stdout) if r.returncode == 0 else {}


def _agent(st: dict, name: str) -> dict:
    return next((a for a in st.get("agents", []) if a["name"] == name), {})


def _cgroup_dirs(pid: int) -> list[Path]:
    root = Path("/sys/fs/cgroup")
    if not root.is_dir():
        return []
    while True:
        try:
            return [p for p in root.glob(f"**/fleet-{pid}-*") if p.is_dir()]
        except FileNotFoundError:  # removed while the walk was inside it (the watchdog at work): walk again
            continue


MODES = {
    "v1": ("cgroup v1", True),
    "v2": ("cgroup v2", True),
    "off": ("process tree", False),
}


def _available(mode: str) -> bool:
    from fleet.supervisor.cgroups import Cgroups

    cg = Cgroups.detect("probe0", mode)
    if cg is None:
        return False
    cg.remove()
    return True


@pytest.fixture(params=list(MODES))
def ghost_fleet(request, tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[bytes], str, str]]:
    mode = request.param
    if mode != "off" and not _available(mode):
        pytest.skip(f"no cgroup {mode} here")
    isolation, double_fork = MODES[mode]
    marker = f"{random.randint(100, 999)}.{random.randint(1000, 9999)}"
    d = write_fleet(tmp_path / "f", _fleet_toml(marker, double_fork))
    env = {**os.environ, "FLEET_CGROUPS": mode}
    proc = subprocess.Popen([*FLEET, "-C", str(d), "run", "-q"], env=env)
    try:
        yield d, proc, marker, isolation
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in _marked(marker):  # never leave a test's escapee behind, whatever happened
            os.kill(pid, signal.SIGKILL)


def _wait_up(d: Path, marker: str, want: int) -> None:
    def up() -> bool:
        st = _status(d)
        ghost = _agent(st, "ghost")
        # processes >= 2: the supervisor has counted the agent's tree (sh and its escapees).
        return ghost.get("last_line") == "ghost-up" and ghost.get("processes", 0) >= 2 and len(
            _marked(marker)) >= want

    wait_until(up, 30, "the ghost agent and its escapees")


def test_stop_and_supervisor_death_leave_no_escapee(ghost_fleet):
    d, proc, marker, isolation = ghost_fleet
    want = 2 if "cgroup" in isolation else 1
    _wait_up(d, marker, want)
    st = _status(d)
    assert st["isolation"].startswith(isolation), st["isolation"]

    # fleet stop NAME: the setsid'ed, env-less children go with the agent, the other agent stays.
    assert fleet_cmd(d, "stop", "ghost").returncode == 0
    wait_until(lambda: not _marked(marker), 10, "the escapees to be stopped with their agent")
    assert _agent(_status(d), "keeper")["state"] == "running"

    # The supervisor's death: the watchdog takes them all.
    assert fleet_cmd(d, "start", "ghost").returncode == 0
    _wait_up(d, marker, want)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    wait_until(lambda: not _marked(marker), 10, "the escapees to die with the supervisor")
    wait_until(lambda: not _cgroup_dirs(proc.pid), 10, "the fleet's cgroups to be removed")
