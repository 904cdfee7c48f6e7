"""The fleet as a daemon, from a shell: ``fleet up``, ``fleet down``, ``fleet status``, ``fleet policy show``.

Real processes throughout: ``fleet up`` starts a real background fleet, and
``fleet down`` is judged by the kernel (no process carrying the fleet's token
is left, the supervisor and the watchdog included), not by what it prints.
"""

from __future__ import annotations

import json
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil

from tests.conftest import write_fleet
from tests.fleet.test_cli_and_orphans import FLEET, ORPHAN_FLEET, SPIN, fleet_cmd, fleet_processes, wait_until

STUBBORN = ORPHAN_FLEET + """
[[agent]]
name = "stubborn"
# Ignores SIGTERM: only the SIGKILL after its grace period ends it.
command = ["sh", "-c", "trap '' TERM; echo stubborn-up; while true; do sleep 0.1; done"]
[agent.restart]
stop_grace_s = 1.5
"""


def token_processes(token: str) -> list[int]:
    found = []
    for p in psutil.process_iter(["pid", "environ"]):
        try:
            env = p.info.get("environ") or {}
            if env.get("FLEET_SUPERVISOR_TOKEN") == token and p.status() != psutil.STATUS_ZOMBIE:
                found.append(p.pid)
        except psutil.Error:
            continue
    return found


def fleet_token(agent_pid: int) -> str:
    return psutil.Process(agent_pid).environ()["FLEET_SUPERVISOR_TOKEN"]


def up(d: Path) -> subprocess.CompletedProcess[str]:
    return fleet_cmd(d, "up", timeout=60)


def test_up_twice_starts_one_fleet_and_down_stops_it(tmp_path: Path):
    d = write_fleet(tmp_path / "f", '[fleet]\nname = "boot"\n[[agent]]\nname = "a"\ncommand = ["sleep", "1000"]\n')
    try:
        first = up(d)
        assert first.returncode == 0 and "fleet 'boot' up: 1 agent," in first.stdout, first
        st = json.loads(fleet_cmd(d, "status", "--json").stdout)  # answers at once: up returned when it did
        pid = st["daemon"]["pid"]
        assert st["daemon"]["started_by"] == "up" and st["daemon"]["state_dir"] == str(d / ".fleet")
        second = up(d)
        assert second.returncode == 0 and "already running" in second.stdout, second
        assert json.loads(fleet_cmd(d, "status", "--json").stdout)["daemon"]["pid"] == pid
        text = fleet_cmd(d, "status").stdout
        assert f"daemon pid {pid}" in text and "started by `fleet up`" in text and "consoles: none" in text
        # Two at once race for the state directory: still one fleet.
        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(lambda _: up(d), range(2)))
        assert all(r.returncode == 0 for r in results), results
        supervisors = [p for p in psutil.process_iter(["cmdline"])
                       if p.info["cmdline"] and "run" in p.info["cmdline"] and str(d) in p.info["cmdline"]]
        assert [p.pid for p in supervisors] == [pid]
    finally:
        down = fleet_cmd(d, "down")
    assert down.returncode == 0 and down.stdout.count("\n") == 1 and "stopped" in down.stdout, down
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_up_from_a_fresh_directory_with_two_simultaneous_calls_starts_one_fleet(tmp_path: Path):
    d = write_fleet(tmp_path / "f", '[[agent]]\nname = "a"\ncommand = ["sleep", "1000"]\n')
    try:
        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(lambda _: up(d), range(2)))
        assert all(r.returncode == 0 for r in results), results
        assert sorted("already running" in r.stdout for r in results) == [False, True], results
    finally:
        assert fleet_cmd(d, "down").returncode == 0
    supervisors = [p for p in psutil.process_iter(["cmdline"])
                   if p.info["cmdline"] and "run" in p.info["cmdline"] and str(d) in p.info["cmdline"]]
    assert supervisors == []


def test_down_leaves_no_process_of_the_fleet_within_the_grace_period(tmp_path: Path):
    d = write_fleet(tmp_path / "f", STUBBORN, {"agents/__init__.py": "", "agents/spin.py": SPIN})
    try:
        assert up(d).returncode == 0

        def ready() -> bool:
            st = json.loads(fleet_cmd(d, "status", "--json").stdout)
            return all(a["state"] == "running" and a["last_line"].endswith("-up") for a in st["agents"])

        wait_until(ready, 30, "every agent up")
        st = json.loads(fleet_cmd(d, "status", "--json").stdout)
        token = fleet_token(st["agents"][0]["pid"])
        fleet_pids = token_processes(token)
        # sdk; tree: sh, sh, 2 sleeps; escapee: sh + setsid sleep; stubborn: sh (+ its sleep)
        assert len(fleet_pids) >= 8, fleet_pids
        sup, watchdog = st["daemon"]["pid"], st["daemon"]["watchdog_pid"]
        assert watchdog and psutil.Process(watchdog).ppid() == sup
        t0 = time.monotonic()
        r = fleet_cmd(d, "down")
        took = time.monotonic() - t0
    finally:
        fleet_cmd(d, "down")
    assert r.returncode == 0, r
    assert r.stdout.count("\n") == 1 and "fleet 'orphans' stopped: 4 agents" in r.stdout, r.stdout
    # Within the longest grace (the sdk agent's default 5 s; the stubborn one's 1.5 s), plus
    # two interpreters' start-up and exit on a loaded 2-core box.
    assert took < 5.0 + 5.0, took
    assert not fleet_processes([*fleet_pids, sup, watchdog])
    assert token_processes(token) == []
    assert not (d / ".fleet" / "control.sock").exists()


def test_down_without_a_fleet_says_so_and_exits_zero(tmp_path: Path):
    d = write_fleet(tmp_path / "idle", '[[agent]]\nname = "x"\ncommand = ["true"]\n')
    r = fleet_cmd(d, "down")
    assert r.returncode == 0 and r.stdout == f"no fleet is running in {d}\n", r


def test_a_fleet_run_in_the_foreground_is_stopped_by_down_too(tmp_path: Path):
    d = write_fleet(tmp_path / "f", '[[agent]]\nname = "a"\ncommand = ["sleep", "1000"]\n')
    proc = subprocess.Popen([*FLEET, "-C", str(d), "run"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        wait_until(lambda: fleet_cmd(d, "status").returncode == 0, 30, "the fleet to answer")
        assert "started by `fleet run` (foreground)" in fleet_cmd(d, "status").stdout
        assert fleet_cmd(d, "down").returncode == 0
        out, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert "a | running (pid" in out and "a | stopped (fleet shutdown)" in out  # `fleet run` printed both


def test_policy_show_shows_the_policy_in_force_and_the_error_on_disk(tmp_path: Path):
    d = write_fleet(
        tmp_path / "f",
        '[[agent]]\nname = "a"\ncommand = ["sleep", "1000"]\npolicy = "ops"\n',
        {"policies/ops.toml": "[budget]\nusd_per_day = 2.0\n"},
    )
    try:
        assert up(d).returncode == 0
        r = fleet_cmd(d, "policy", "show", "a")
        assert r.returncode == 0 and "budget.usd_per_day" in r.stdout and "2.0" in r.stdout, r
        assert "in force" in r.stdout and "differ" not in r.stdout
        (d / "policies" / "ops.toml").write_text("[budget]\nusd_per_dya = 9.0\n")
        r = fleet_cmd(d, "policy", "show", "a")
        assert r.returncode == 0, r
        row = next(line for line in r.stdout.splitlines() if "budget.usd_per_day" in line)
        assert "2.0" in row  # the policy in force, not the broken file
        assert "policies/ops.toml:2:1: unknown key" in r.stdout and "usd_per_day" in r.stdout
        assert "not valid" in r.stdout
        js = json.loads(fleet_cmd(d, "policy", "show", "a", "--json").stdout)
        assert js["policy"]["budget"]["usd_per_day"] == 2.0 and js["disk"]["errors"][0]["line"] == 2
        # With the fleet stopped, the files are read as they are.
        assert fleet_cmd(d, "down").returncode == 0
        r = fleet_cmd(d, "policy", "show", "a")
        assert r.returncode == 1 and "policies/ops.toml:2:1" in r.stderr
    finally:
        fleet_cmd(d, "down")


def test_what_the_console_shows_has_a_command(tmp_path: Path):
    d = write_fleet(
        tmp_path / "f",
        """
        [[agent]]
        name = "anomaly-watch"
        command = ["sleep", "1000"]

        [[agent]]
        name = "crashy"
        command = ["sh", "-c", "exit 3"]
        [agent.restart]
        max_restarts = 1
        backoff_initial_s = 0.05
        """,
    )
    try:
        assert up(d).returncode == 0
        wait_until(lambda: "crash_loop" in fleet_cmd(d, "alerts").stdout, 30, "the crash-loop alert")
        r = fleet_cmd(d, "alerts", "--open")
        assert r.returncode == 0 and "crashy  error  crash_loop  open" in r.stdout and "1 open" in r.stdout, r
        assert json.loads(fleet_cmd(d, "alerts", "--json").stdout)["open"] == 1
        r = fleet_cmd(d, "events", "--kind", "state", "--agent", "crashy")
        assert r.returncode == 0 and "crash-loop" in r.stdout and "anomaly-watch" not in r.stdout, r
        assert fleet_cmd(d, "usage").stdout == "no LLM calls yet\n"
        assert fleet_cmd(d, "metrics").stdout == "no metrics yet\n"
        r = fleet_cmd(d, "pause", "anomaly-wach")
        assert r.returncode == 1 and "did you mean 'anomaly-watch'?" in r.stderr, r
        r = fleet_cmd(d, "policy", "set", "anomaly-watch", "budget.usd_per_day", "0.5")
        assert r.returncode == 0 and "applied by the running fleet" in r.stdout, r
        wait_until(lambda: "0.5" in next(line for line in fleet_cmd(d, "policy", "show", "anomaly-watch").stdout
                                         .splitlines() if "usd_per_day" in line), 10, "the override in force")
    finally:
        fleet_cmd(d, "down")
