"""Resource limits per agent (issue 22): a leaky agent and a fork bomb, held and acted upon.

The fork bomb is only run where the kernel contains it (a cgroup with the
``pids`` controller: ``max_processes`` is then a hard cap on the whole tree,
and ``cpu_percent`` keeps it from eating a core of a shared machine); the
fixture kills its cgroup whatever happens. The leaky agent runs under both
isolations: with a memory cgroup the kernel stops it at the limit, without
one the once-a-second measurement acts.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from fleet.supervisor.cgroups import Cgroups

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux process model")


def _cgroups_with(*controllers: str) -> bool:
    cg = Cgroups.detect("probe1")
    if cg is None:
        return False
    try:
        return set(controllers) <= cg.can_limit
    finally:
        cg.remove()


LEAKER = (
    "import time\n"
    "print('leaking', flush=True)\n"
    "hoard = []\n"
    "while True:\n"
    "    hoard.append(b'x' * (4 << 20))  # written, so resident\n"
    "    time.sleep(0.05)\n"
)


@pytest.mark.parametrize("isolation", ["auto", "off"])
async def test_a_leaky_agent_is_held_at_its_memory_limit_and_restarted(fleet_factory, monkeypatch, isolation):
    if isolation == "auto" and not _cgroups_with("memory"):
        pytest.skip("no memory cgroup here")
    monkeypatch.setenv("FLEET_CGROUPS", isolation)
    f = await fleet_factory(
        f"""
        [[agent]]
        name = "leaky"
        command = [{sys.executable!r}, "-c", {LEAKER!r}]
        [agent.limits]
        memory_mb = 64
        action = "restart"
        [agent.restart]
        backoff_initial_s = 0.1
        """
    )
    first = await f.events.state("leaky", "running")
    ev = await f.events.wait_for(lambda e: e["event"] == "limit" and e["data"]["agent"] == "leaky", timeout=30)
    assert ev["data"]["limit"] == "memory_mb" and ev["data"]["action"] == "restart"
    alert = await f.events.wait_for(lambda e: e["event"] == "alert" and e["data"].get("rule") == "limits.memory_mb")
    assert alert["data"]["agent"] == "leaky"
    # Restarted: by the action, or (the kernel killed it at the limit) by the restart policy.
    await f.events.wait_for(lambda e: e["event"] == "state" and e["data"]["agent"] == "leaky"
                            and e["data"]["state"] == "running" and e["data"]["pid"] != first["data"]["pid"],
                            timeout=30)
    await f.sup.store.flush()
    stored = await f.call("events", kinds=["limit"])
    assert any(e["data"]["limit"] == "memory_mb" for e in stored["events"])
    if isolation == "auto":
        cg = f.sup.instances["leaky"].cgroup
        assert cg is not None and cg.limits.memory_bytes == 64 << 20
        peak = int((cg.dirs["memory"] / "memory.max_usage_in_bytes").read_text()) if f.sup.cgroups.version == 1 \
            else None
        assert peak is None or peak <= 64 << 20  # the kernel never let it past the limit
    await f.call("stop", names=["leaky"])


FORK_BOMB = (
    "import os, time\n"
    "print('armed', flush=True)\n"
    "while True:  # every child forks on too; refused forks are retried\n"
    "    try:\n"
    "        os.fork()\n"
    "    except OSError:\n"
    "        time.sleep(0.01)\n"
)


@pytest.mark.timeout(60)
async def test_a_fork_bomb_is_contained_by_max_processes(fleet_factory, monkeypatch):
    if not _cgroups_with("pids", "cpu"):
        pytest.skip("only run where the kernel caps the whole tree (pids and cpu cgroups)")
    monkeypatch.setenv("FLEET_CGROUPS", "auto")
    f = await fleet_factory(
        f"""
        [[agent]]
        name = "bomb"
        command = [{sys.executable!r}, "-c", {FORK_BOMB!r}]
        [agent.limits]
        max_processes = 16
        cpu_percent = 20
        action = "pause"
        """
    )
    inst = f.sup.instances["bomb"]
    try:
        ev = await f.events.wait_for(lambda e: e["event"] == "limit" and e["data"]["limit"] == "max_processes",
                                     timeout=30)
        assert ev["data"]["agent"] == "bomb" and ev["data"]["action"] == "pause"
        assert inst.cgroup is not None
        assert len(inst.cgroup.pids()) <= 16
        usage = inst.cgroup.usage()
        assert usage.pids_refused > 0 and usage.processes <= 16
        await f.call("stop", names=["bomb"])
        assert inst.cgroup.pids() == []
    finally:
        if inst.cgroup is not None:
            inst.cgroup.kill()


async def test_limits_change_live_and_open_files_is_an_rlimit(fleet_factory, monkeypatch):
    monkeypatch.setenv("FLEET_CGROUPS", "auto")
    f = await fleet_factory(
        """
        [[agent]]
        name = "fds"
        command = ["sh", "-c", "echo nofile=$(ulimit -n); exec sleep 60"]
        [agent.limits]
        open_files = 77
        """
    )
    ev = await f.events.wait_for(lambda e: e["event"] == "logs" and e["data"]["stream"] == "stdout")
    assert ev["data"]["text"] == "nofile=77\n"
    pid = (await f.agent("fds"))["pid"]
    limits = Path(f"/proc/{pid}/limits").read_text()  # noqa: ASYNC240 - procfs, never blocks
    assert any(line.startswith("Max open files") and " 77 " in line for line in limits.splitlines())
    inst = f.sup.instances["fds"]
    if inst.cgroup is not None and "pids" in f.sup.cgroups.can_limit:
        from fleet.policy import load_book

        (f.dir / "fleet.toml").write_text((f.dir / "fleet.toml").read_text().replace(
            "open_files = 77", "open_files = 77\nmax_processes = 9"))
        await f.sup.apply_book(load_book(f.dir))
        assert (inst.cgroup.dirs["pids"] / "pids.max").read_text().strip() == "9"
    assert (await f.agent("fds"))["pid"] == pid  # applied without a restart


HOARDER = "import time; x = b'a' * (40 << 20); print('hoarding', flush=True); time.sleep(60)"


@pytest.mark.parametrize("isolation", ["auto", "off"])
async def test_status_counts_the_agents_children(fleet_factory, monkeypatch, isolation):
    """Memory, CPU and processes of the agent's whole tree, not of its main process only."""
    if isolation == "auto" and not _cgroups_with("cpu", "memory"):
        pytest.skip("no cpu and memory cgroups here")
    monkeypatch.setenv("FLEET_CGROUPS", isolation)
    burn = "yes > /dev/null & " if isolation == "auto" else ""  # CPU burnt only where it is capped
    f = await fleet_factory(
        f"""
        [[agent]]
        name = "parent"
        command = ["sh", "-c", "{sys.executable} -c \\"{HOARDER}\\" & {burn}wait"]
        [agent.limits]
        cpu_percent = 30
        """
    )
    await f.events.wait_for(lambda e: e["event"] == "logs" and "hoarding" in e["data"]["text"])
    want = 3 if burn else 2
    a = await f.wait_status("parent", lambda a: a["processes"] >= want and a["rss_bytes"] >= 40 << 20)
    assert a["rss_bytes"] >= 40 << 20  # the child's 40 MiB, though the main process is a small sh
    if burn:
        # The child burns a core; the quota holds the whole agent at 30 % of one.
        a = await f.wait_status("parent", lambda a: a["cpu_pct"] >= 10)
        assert a["cpu_pct"] <= 45, a
        ev = await f.events.wait_for(lambda e: e["event"] == "limit" and e["data"]["limit"] == "cpu_percent")
        assert ev["data"]["action"] == "alert"
    await f.call("stop", names=["parent"])
