"""cgroups: the v2 layout on a fake tree (no privilege needed), the wrapper, the real thing where allowed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from fleet.supervisor import cgroups as cgmod
from fleet.supervisor.cgroups import Cgroups, Limits, wrap_argv
from fleet.supervisor.hardening import become_subreaper, is_subreaper, stop_subreaping
from fleet.supervisor.proctree import TreeTracker
from tests.fleet.test_cli_and_orphans import wait_until


def _fake_v2(tmp_path: Path, controllers: str = "cpuset cpu io memory pids") -> Path:
    own = tmp_path / "cg"
    own.mkdir(parents=True)
    (own / "cgroup.controllers").write_text(controllers + "\n")
    return own


def test_v2_limits_and_figures_on_a_fake_tree(tmp_path: Path) -> None:
    own = _fake_v2(tmp_path)
    cg = Cgroups._make_v2(own, "fleet-1-abc", "abc")
    assert cg is not None and cg.version == 2
    assert (own / "cgroup.subtree_control").read_text() == "+memory +pids +cpu"
    assert cg.can_limit == {"memory", "pids", "cpu"}
    agent = cg.agent("worker#2")
    assert agent is not None and agent.dirs[""].name == "agent-worker@2"
    applied = agent.set_limits(Limits(memory_bytes=64 << 20, cpu_percent=150, max_processes=32))
    assert applied == Limits(memory_bytes=64 << 20, cpu_percent=150, max_processes=32)
    d = agent.dirs[""]
    assert (d / "memory.max").read_text() == str(64 << 20)
    assert (d / "memory.swap.max").read_text() == "0"
    assert (d / "pids.max").read_text() == "32"
    assert (d / "cpu.max").read_text() == "150000 100000"
    assert agent.set_limits(Limits()) == Limits()  # "off" lifts them
    assert (d / "memory.max").read_text() == "max" and (d / "cpu.max").read_text() == "max 100000"
    (d / "cgroup.procs").write_text("")
    (d / "memory.stat").write_text("anon 1000\nfile 999999\nfile_mapped 24\n")
    (d / "memory.events").write_text("low 0\nhigh 0\nmax 7\noom 1\noom_kill 2\n")
    (d / "pids.events").write_text("max 5\n")
    (d / "cpu.stat").write_text("usage_usec 2500\nnr_periods 10\nnr_throttled 3\n")
    u = agent.usage()
    assert (u.cpu_ns, u.memory_bytes, u.oom_kills, u.pids_refused, u.throttled) == (2_500_000, 1024, 2, 5, 3)


def test_v2_without_delegated_controllers_still_tracks(tmp_path: Path) -> None:
    cg = Cgroups._make_v2(_fake_v2(tmp_path, controllers=""), "fleet-1-abc", "abc")
    assert cg is not None and cg.can_limit == set() and "tracking only" in cg.describe()
    agent = cg.agent("a")
    assert agent is not None and agent.set_limits(Limits(memory_bytes=1 << 20)) == Limits()


def test_stale_fleet_cgroups_are_swept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    own = _fake_v2(tmp_path)
    dead = own / "fleet-999999999-0a1b"  # no such pid: its fleet and watchdog are gone
    (dead / "agent-x").mkdir(parents=True)
    mine = own / f"fleet-{os.getpid()}-ffff"
    mine.mkdir()
    (own / "not-ours").mkdir()
    removed: list[Path] = []
    monkeypatch.setattr(cgmod, "remove_tree", lambda d, wait_s=1.0: removed.append(d) or True)
    Cgroups._make_v2(own, "fleet-1-abc", "abc")
    assert removed == [dead]


def test_the_wrapper_fails_like_popen_for_a_missing_program(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        wrap_argv(["no-such-program-anywhere"], [], None, os.environ.get("PATH"))
    with pytest.raises(FileNotFoundError):
        wrap_argv([str(tmp_path / "missing")], [], None, None)
    procs = tmp_path / "cgroup.procs"
    argv = wrap_argv(["sh", "-c", "echo $$; ulimit -n"], [procs], 99, os.environ.get("PATH"))
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout.split()
    assert out[1] == "99" and procs.read_text().strip() == out[0]  # same pid: sh exec'd the agent


def test_subreaper_adopts_a_setsid_orphan_and_the_tree_keeps_it(tmp_path: Path) -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("Linux")
    fifo = tmp_path / "go"
    os.mkfifo(fifo)
    become_subreaper()
    try:
        assert is_subreaper()
        # The middle shell exits once told to: its env -i setsid child is orphaned and adopted by us.
        agent = subprocess.Popen(
            ["sh", "-c", f"env -i setsid sh -c 'sleep 77.5 & echo $!; read go < {fifo}' & wait"],
            stdout=subprocess.PIPE, text=True)
        assert agent.stdout is not None
        orphan = int(agent.stdout.readline())
        tracker = TreeTracker()
        tracker.update({agent.pid: "agent"})  # a scan while the family is whole
        fifo.write_text("go\n")
        agent.wait()
        wait_until(lambda: (p := tracker.update({}).get("agent")) is not None
                   and any(x.pid == orphan and x.ppid == os.getpid() for x in p), 10, "the adoption")
        owned = tracker.update({})
        assert orphan in [p.pid for p in owned.get("agent", [])]
        assert tracker.procs[orphan].ppid == os.getpid()  # adopted, not init's
        assert tracker.signal("agent", signal.SIGKILL) >= 1
        os.waitpid(orphan, 0)
    finally:
        stop_subreaping()
    assert not is_subreaper()


def test_real_cgroup_freeze_and_kill_a_forking_tree() -> None:
    cg = Cgroups.detect("unit0")
    if cg is None:
        pytest.skip("no cgroup the fleet may create here")
    try:
        agent = cg.agent("forker")
        assert agent is not None
        argv = wrap_argv(["sh", "-c", "env -i setsid sleep 78.5 & env -i setsid sleep 78.6 & wait"],
                         agent.procs_files, None, os.environ.get("PATH"))
        proc = subprocess.Popen(argv, start_new_session=True)
        wait_until(lambda: len(agent.pids()) >= 3, 10, "the tree in its cgroup")
        agent.kill()
        proc.wait()
        wait_until(lambda: not agent.pids(), 5, "the cgroup to empty")
    finally:
        assert cg.remove()
    assert not any(p.exists() for p in cg.bases.values())


def test_v2_supervisor_alone_in_its_cgroup_moves_to_a_leaf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A delegated unit: the first subtree_control write fails (EBUSY: we are in it), so we move out."""
    own = _fake_v2(tmp_path)
    (own / "cgroup.procs").write_text(f"{os.getpid()}\n")
    real_write = cgmod._write
    tries: list[Path] = []

    def write(path: Path, value: str) -> bool:
        if path == own / "cgroup.subtree_control" and not tries:
            tries.append(path)
            return False  # EBUSY: the supervisor is still in ``own``
        return real_write(path, value)

    monkeypatch.setattr(cgmod, "_write", write)
    cg = Cgroups._make_v2(own, "fleet-1-abc", "abc")
    assert cg is not None and cg.can_limit == {"memory", "pids", "cpu"}
    assert (own / "fleet-1-abc.sup" / "cgroup.procs").read_text() == str(os.getpid())
    assert (own / "cgroup.subtree_control").read_text() == "+memory +pids +cpu"


def test_a_cgroup_that_cannot_take_a_process_is_not_used(tmp_path: Path) -> None:
    """Making directories is allowed but moving a process in is not: the fleet must not use it."""
    cg = Cgroups._make_v2(_fake_v2(tmp_path), "fleet-1-abc", "abc")
    assert cg is not None
    (cg.bases[""] / "agent-.probe" / "cgroup.procs").mkdir(parents=True)  # a write to it fails
    assert not cg.can_attach()
    other = Cgroups._make_v2(_fake_v2(tmp_path / "b"), "fleet-1-abd", "abd")
    assert other is not None and other.can_attach()  # a plain file takes the pid
