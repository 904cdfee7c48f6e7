"""Resource limits per agent: what the kernel enforces, what is measured, what is done when crossed.

The ``[limits]`` policy is written to the agent's cgroup (``memory_mb``,
``max_processes``, ``cpu_percent``) where the system has one; ``open_files``
is an rlimit set as the agent starts. Once a second, for agents with limits
only, the watch reads what the kernel did (processes OOM-killed at the memory
limit, forks refused at ``max_processes``, periods throttled at the CPU quota)
and what the agent uses; without a cgroup it measures the process tree
(memory, processes, CPU) instead, and the action is then the only
enforcement. A crossing is published as a persisted ``limit`` event and an
alert, and the policy's ``action`` follows: ``restart``, ``pause`` or only
``alert``. A limit that stays crossed (a CPU-bound agent throttled each
second) counts once, until it clears.

The same figures give the status table its CPU and memory: the agent and
all its children, from the cgroup's totals or the tree's sums.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fleet.supervisor.cgroups import Limits
from fleet.supervisor.seams import fire

if TYPE_CHECKING:
    from fleet.supervisor.core import Supervisor
    from fleet.supervisor.instance import AgentInstance

#: Share of ``memory_mb`` at which resident memory counts as crossing it (the kernel stops it at 100 %).
MEMORY_CROSSING = 0.95
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def limits_of(policy: Any) -> Limits:
    lim = policy.limits
    return Limits(
        memory_bytes=int(lim.memory_mb * 1024 * 1024) if lim.memory_mb is not None else None,
        cpu_percent=lim.cpu_percent,
        max_processes=lim.max_processes,
    )


def has_limits(policy: Any) -> bool:
    lim = policy.limits
    return any(v is not None for v in (lim.memory_mb, lim.cpu_percent, lim.open_files, lim.max_processes))


@dataclass(slots=True)
class Figures:
    """One agent's tree, now."""

    cpu_pct: float
    memory_bytes: int
    processes: int
    oom_kills: int = 0
    pids_refused: int = 0
    throttled: int = 0


@dataclass(slots=True)
class _Seen:
    oom_kills: int = 0
    pids_refused: int = 0
    throttled: int = 0
    over: set[str] = field(default_factory=set)  # limits crossed and not yet cleared


class LimitWatch:
    """Per-agent figures and limit crossings of one supervisor."""

    def __init__(self, sup: Supervisor) -> None:
        self.sup = sup
        self._seen: dict[str, _Seen] = {}
        #: name -> (CPU seconds of the tree, monotonic time) at the last reading, per consumer
        self._cpu_status: dict[str, tuple[float, float]] = {}
        self._cpu_check: dict[str, tuple[float, float]] = {}

    def forget(self, name: str) -> None:
        self._seen.pop(name, None)
        self._cpu_status.pop(name, None)
        self._cpu_check.pop(name, None)

    # --- figures ---------------------------------------------------------------------------
    def figures(self, inst: AgentInstance, counters: bool = False) -> Figures | None:
        """CPU, memory and processes of the agent and all its children (None: not known).

        ``counters``: also what the kernel did at the limits (for ``check``).
        """
        # Status (another thread) and the limit check each keep their own CPU baseline:
        # interleaved, each would measure a few milliseconds instead of its second.
        clocks = self._cpu_check if counters else self._cpu_status
        now = time.monotonic()
        cg = inst.cgroup
        if cg is not None:
            u = cg.usage(counters)
            cpu_s = u.cpu_ns / 1e9 if u.cpu_ns is not None else None
            memory = u.memory_bytes
            if memory is None or cpu_s is None:  # v2 without controllers: the tree has the rest
                tree = self._tree_figures(inst, [int(p) for p in cg.pids()])
                memory = tree[1] if memory is None else memory
                cpu_s = tree[0] if cpu_s is None else cpu_s
            figures = Figures(0.0, memory, u.processes, u.oom_kills, u.pids_refused, u.throttled)
        else:
            tracker = self.sup.tree
            if tracker is None:
                return None
            pids = tracker.alive(inst.name)
            if not pids:
                return None
            cpu_s, memory = self._tree_figures(inst, pids)
            figures = Figures(0.0, memory, len(pids))
        prev = clocks.get(inst.name)
        if prev is not None and now > prev[1] and cpu_s is not None:
            figures.cpu_pct = round(max(0.0, (cpu_s - prev[0]) / (now - prev[1]) * 100), 1)
        if cpu_s is not None:
            clocks[inst.name] = (cpu_s, now)
        return figures

    def _tree_figures(self, inst: AgentInstance, pids: list[int]) -> tuple[float, int]:
        from fleet.supervisor.proctree import read_proc

        tracker = self.sup.tree
        known = tracker.procs if tracker is not None else {}
        ticks = rss = 0
        for pid in pids:
            p = known.get(pid) or read_proc(pid)
            if p is not None:
                ticks += p.ticks
                rss += p.rss
        return ticks / _TICKS, rss

    # --- crossings -----------------------------------------------------------------------
    def check(self, inst: AgentInstance, figures: Figures | None = None, *, exiting: bool = False) -> list[str]:
        """Compare ``inst`` with its limits; publish and act on new crossings. Returns them.

        ``exiting``: the agent's main process just ended (maybe the kernel killed it
        at the limit, or a refused fork made it give up): crossings are still
        published, and the restart policy, not the action, decides what follows.
        """
        policy = inst.policy
        if not has_limits(policy) or (not inst.state.alive and not exiting):
            return []
        figures = figures or self.figures(inst, counters=True)
        if figures is None:
            return []
        seen = self._seen.setdefault(inst.name, _Seen())
        lim = policy.limits
        kernel = inst.cgroup.limits if inst.cgroup is not None else Limits()
        now_over: dict[str, str] = {}
        if lim.memory_mb is not None:
            limit = lim.memory_mb * 1024 * 1024
            if figures.oom_kills > seen.oom_kills:
                now_over["memory_mb"] = (
                    f"memory limit {lim.memory_mb:g} MiB reached: the kernel killed "
                    f"{figures.oom_kills - seen.oom_kills} process(es) of the agent")
            elif figures.memory_bytes >= limit * MEMORY_CROSSING:
                now_over["memory_mb"] = (
                    f"uses {figures.memory_bytes / 1048576:.0f} MiB of its {lim.memory_mb:g} MiB memory limit")
        if lim.max_processes is not None:
            if figures.pids_refused > seen.pids_refused:
                now_over["max_processes"] = (
                    f"{figures.pids_refused - seen.pids_refused} fork(s) refused at max_processes = "
                    f"{lim.max_processes}")
            elif kernel.max_processes is None and figures.processes > lim.max_processes:
                now_over["max_processes"] = f"runs {figures.processes} processes (max_processes = {lim.max_processes})"
        if lim.cpu_percent is not None:
            throttled = figures.throttled > seen.throttled
            if throttled or (kernel.cpu_percent is None and figures.cpu_pct > lim.cpu_percent):
                now_over["cpu_percent"] = (
                    f"held at its CPU limit of {lim.cpu_percent:g}% (using {figures.cpu_pct:g}%)")
        if lim.open_files is not None:
            most = _most_open_files(inst)
            if most >= lim.open_files:
                now_over["open_files"] = f"a process has {most} files open (open_files = {lim.open_files})"
        seen.oom_kills, seen.pids_refused, seen.throttled = figures.oom_kills, figures.pids_refused, figures.throttled
        # A crossing counts when it starts; it ends with the first sample within the limit.
        new = [k for k in now_over if k not in seen.over]
        seen.over = set(now_over)
        for key in new:
            self._crossed(inst, key, now_over[key], figures, act=not exiting)
        return new

    def _crossed(self, inst: AgentInstance, key: str, message: str, figures: Figures, act: bool = True) -> None:
        action = inst.policy.limits.action
        sup = self.sup
        if not act:
            message += " (the agent exited; its restart policy decides what follows)"
        data = {"limit": key, "action": action, "acted": act, "message": message,
                "memory_bytes": figures.memory_bytes, "processes": figures.processes, "cpu_pct": figures.cpu_pct}
        sup.publish("limit", inst.name, data)
        alert = {"rule": f"limits.{key}", "severity": "error", "message": message, "fields": {"action": action}}
        if not fire(sup.hooks.on_agent_alert, inst, alert):
            sup.publish("alert", inst.name, alert)
        sup.note(inst.name, f"limit crossed: {message}" + (f"; action: {action}" if act else ""))
        if not act:
            return
        if action == "restart" and inst.state.alive and not sup.stopping:
            sup.spawn(inst.restart())
        elif action == "pause":
            inst.pause(f"limits.{key}: {message}")


def _most_open_files(inst: AgentInstance) -> int:
    """The largest number of open files of one of the agent's processes."""
    pids = inst.process_pids()
    most = 0
    for pid in pids:
        try:
            most = max(most, len(os.listdir(f"/proc/{pid}/fd")))
        except OSError:
            continue
    return most
