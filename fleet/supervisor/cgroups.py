"""Each agent in a control group of its own: all its processes found, counted, limited, stopped.

A process group is not enough to know an agent's processes: a child that
calls ``setsid`` leaves it, and one that also empties its environment cannot
be recognised by a token either. A cgroup can't be left by an unprivileged
process, counts memory and CPU for the whole tree, and enforces limits on it
(memory, number of processes, CPU quota). So where the system lets us, the
fleet creates one directory per fleet (``fleet-<pid>-<token>``, under the
supervisor's own cgroup) and one per agent instance inside it, and removes
them when it stops; what a crashed fleet left is removed by the next one.

Both layouts are supported, detected at start: cgroup v2 (one hierarchy;
limits need the ``memory``/``pids``/``cpu`` controllers delegated, else the
cgroup still tracks and kills) and the v1 controllers that machines still
mount one per directory (``memory``, ``pids``, ``cpu``, ``cpuacct``,
``freezer``). ``FLEET_CGROUPS`` = ``off`` | ``v1`` | ``v2`` | ``auto``
(default) chooses; where none works the supervisor falls back to the
process tree and ``PR_SET_CHILD_SUBREAPER`` (see ``hardening``).

A process joins its cgroup before it runs anything of the agent: it is
started through ``/bin/sh -c 'echo $$ > cgroup.procs ...; exec "$@"'``, which
costs an ``sh`` exec (about a millisecond) and leaves no window in which
the agent could fork outside. That wrapper also applies ``ulimit -n``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from fleet.supervisor.cgroupkill import read_text as _read
from fleet.supervisor.cgroupkill import remove_tree
from fleet.supervisor.cgroupkill import write_text as _write

#: The v1 controllers the fleet uses, the first one present tracks membership.
V1_CONTROLLERS = ("pids", "freezer", "memory", "cpu", "cpuacct")
#: The v2 controllers it enables for its agents where it may.
V2_CONTROLLERS = ("memory", "pids", "cpu")
#: CFS period used for ``cpu_percent`` quotas.
CPU_PERIOD_US = 100_000


@dataclass(frozen=True, slots=True)
class Limits:
    """What the kernel holds an agent's processes to (None: no limit)."""

    memory_bytes: int | None = None
    cpu_percent: float | None = None
    max_processes: int | None = None

    @property
    def any(self) -> bool:
        return self.memory_bytes is not None or self.cpu_percent is not None or self.max_processes is not None


@dataclass(slots=True)
class Usage:
    """An agent's whole tree as its cgroup counts it."""

    cpu_ns: int | None  # CPU time since the cgroup was created
    memory_bytes: int | None  # resident memory: anonymous + mapped files (page cache not counted)
    processes: int
    oom_kills: int  # processes the kernel killed at the memory limit
    pids_refused: int  # forks refused at max_processes
    throttled: int  # CFS periods in which the CPU quota held it back


def _read_str(path: str | None) -> str | None:
    if path is None:
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        chunks = []
        while True:
            data = os.read(fd, 65536)
            if not data:
                break
            chunks.append(data)
        return b"".join(chunks).decode("ascii", "replace")
    except OSError:
        return None
    finally:
        os.close(fd)


#: Resident memory in memory.stat: anonymous plus mapped files (v1 with hierarchy totals).
_MEM_KEYS_V1 = re.compile(r"^(total_rss|total_mapped_file) (\d+)$", re.M)
_MEM_KEYS_V2 = re.compile(r"^(anon|file_mapped) (\d+)$", re.M)


def _keyed(text: str | None) -> dict[str, int]:
    """``key value`` lines (memory.stat, memory.events, cpu.stat, pids.events) as a dict."""
    out: dict[str, int] = {}
    for line in (text or "").splitlines():
        key, _, value = line.partition(" ")
        with contextlib.suppress(ValueError):
            out[key] = int(value.strip())
    return out


def _mounts() -> list[tuple[str, str, str, set[str]]]:
    """(fstype, mount point, mount root, super options) of every cgroup mount."""
    out = []
    for line in (_read(Path("/proc/self/mountinfo")) or "").splitlines():
        pre, _, post = line.partition(" - ")
        fields, tail = pre.split(), post.split()
        if len(fields) < 5 or len(tail) < 3 or tail[0] not in ("cgroup", "cgroup2"):
            continue
        out.append((tail[0], fields[4].replace("\\040", " "), fields[3], set(tail[2].split(","))))
    return out


def _own_paths() -> tuple[dict[str, str], str | None]:
    """This process's cgroup per v1 controller, and its v2 cgroup."""
    v1: dict[str, str] = {}
    v2: str | None = None
    for line in (_read(Path("/proc/self/cgroup")) or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if parts[0] == "0" and controllers == "":
            v2 = path
        for c in controllers.split(","):
            if c:
                v1[c] = path
    return v1, v2


def _under(mount: str, root: str, path: str) -> Path:
    if root != "/" and path.startswith(root):
        path = path[len(root) :]
    return Path(mount) / path.lstrip("/")


class AgentCgroup:
    """One agent instance's cgroup: a directory per hierarchy (v1) or one (v2)."""

    def __init__(self, owner: Cgroups, dirs: dict[str, Path]) -> None:
        self._owner = owner
        #: controller (v1, co-mounted ones share a directory) or "" (v2) -> directory
        self.dirs = dirs
        self.version = owner.version
        self._track = next(iter(dirs.values()))
        self.limits = Limits()
        self._paths: dict[str, str | None] | None = None

    @property
    def unique_dirs(self) -> list[Path]:
        return list(dict.fromkeys(self.dirs.values()))

    @property
    def procs_files(self) -> list[Path]:
        """Where a starting process writes its pid: every hierarchy but v1's ``cpu`` without a quota.

        A v1 ``cpu`` cgroup is a scheduling group of its own: an agent in one
        competes with the supervisor as a group, not thread by thread, which
        changes how a flood shares the CPU. So an agent joins it only for a
        ``cpu_percent`` (``join_cpu``); its CPU time is counted by ``cpuacct``.
        """
        return [d / "cgroup.procs" for d in self._joined_dirs(self.limits.cpu_percent is not None)]

    def _joined_dirs(self, with_cpu: bool) -> list[Path]:
        cpu = self.dirs.get("cpu") if self.version == 1 else None
        if with_cpu or cpu is None or cpu == self.dirs.get("cpuacct"):  # co-mounted: needed for accounting
            return self.unique_dirs
        return [d for d in self.unique_dirs if d != cpu]

    def join_cpu(self) -> None:
        """Move the agent's processes into its v1 ``cpu`` cgroup (a quota was set while it ran)."""
        cpu = self.dirs.get("cpu") if self.version == 1 else None
        if cpu is None:
            return
        for pid in self.pids():
            _write(cpu / "cgroup.procs", str(pid))

    def _file(self, controller: str, name: str) -> Path | None:
        d = self.dirs.get(controller if self.version == 1 else "")
        if d is None or (self.version == 2 and controller and controller not in self._owner.controllers):
            return None
        return d / name

    def pids(self) -> list[int]:
        text = _read(self._track / "cgroup.procs") or ""
        return [int(p) for p in text.split()]

    # --- limits ---------------------------------------------------------------------------
    def set_limits(self, limits: Limits) -> Limits:
        """Write ``limits`` to the kernel; returns the part that could be applied."""
        applied = {}
        v1 = self.version == 1
        mem = self._file("memory", "memory.limit_in_bytes" if v1 else "memory.max")
        if mem is not None:
            value = str(limits.memory_bytes) if limits.memory_bytes is not None else ("-1" if v1 else "max")
            if _write(mem, value) and limits.memory_bytes is not None:
                applied["memory_bytes"] = limits.memory_bytes
                if not v1:
                    _write(mem.with_name("memory.swap.max"), "0")
        pids = self._file("pids", "pids.max")
        if pids is not None:
            value = str(limits.max_processes) if limits.max_processes is not None else "max"
            if _write(pids, value) and limits.max_processes is not None:
                applied["max_processes"] = limits.max_processes
        quota = None if limits.cpu_percent is None else max(1000, int(limits.cpu_percent / 100 * CPU_PERIOD_US))
        if v1:
            cpu = self._file("cpu", "cpu.cfs_quota_us")
            if cpu is not None:
                _write(cpu.with_name("cpu.cfs_period_us"), str(CPU_PERIOD_US))
                if _write(cpu, str(quota if quota is not None else -1)) and quota is not None:
                    applied["cpu_percent"] = limits.cpu_percent
        else:
            cpu = self._file("cpu", "cpu.max")
            written = cpu is not None and _write(cpu, f"{quota if quota is not None else 'max'} {CPU_PERIOD_US}")
            if written and quota is not None:
                applied["cpu_percent"] = limits.cpu_percent
        had_cpu = self.limits.cpu_percent is not None
        self.limits = Limits(**applied)
        if self.limits.cpu_percent is not None and not had_cpu:
            self.join_cpu()
        return self.limits

    # --- figures ----------------------------------------------------------------------------
    def _files(self) -> dict[str, str | None]:
        """The paths ``usage`` reads, worked out once (Path arithmetic costs more than the reads)."""
        files = self._paths
        if files is None:
            v1 = self.version == 1

            def f(controller: str, name: str) -> str | None:
                path = self._file(controller, name) if v1 or controller else self._track / name
                return str(path) if path is not None else None

            files = self._paths = {
                "procs": str(self._track / "cgroup.procs"),
                "cpu": f("cpuacct", "cpuacct.usage") if v1 else f("", "cpu.stat"),
                "cpu.stat": f("cpu", "cpu.stat") if v1 else f("", "cpu.stat"),
                "memory.stat": f("memory", "memory.stat"),
                "oom": f("memory", "memory.oom_control" if v1 else "memory.events"),
                "pids.events": f("pids", "pids.events"),
            }
        return files

    def usage(self, counters: bool = True) -> Usage:
        """CPU time, resident memory and processes of the whole tree; with ``counters``, also what
        the kernel did at the limits (OOM kills, refused forks, throttled periods).

        About 40 µs without counters: status reads this for every agent once a second.
        """
        files = self._files()
        v1 = self.version == 1
        cpu_ns: int | None = None
        cpu_stat: dict[str, int] = {}
        if v1:
            text = _read_str(files["cpu"])
            cpu_ns = int(text) if text and text.strip().isdigit() else None
        else:
            cpu_stat = _keyed(_read_str(files["cpu"]))
            cpu_ns = cpu_stat["usage_usec"] * 1000 if "usage_usec" in cpu_stat else None
        memory: int | None = None
        text = _read_str(files["memory.stat"])
        if text is not None:
            keys = _MEM_KEYS_V1 if v1 else _MEM_KEYS_V2
            memory = sum(int(m.group(2)) for m in keys.finditer(text))
        procs = _read_str(files["procs"]) or ""
        processes = procs.count("\n")
        oom = refused = throttled = 0
        if counters:
            oom = _keyed(_read_str(files["oom"])).get("oom_kill", 0)
            refused = _keyed(_read_str(files["pids.events"])).get("max", 0)
            if v1 or not cpu_stat:
                cpu_stat = _keyed(_read_str(files["cpu.stat"]))
            throttled = cpu_stat.get("nr_throttled", 0)
        return Usage(cpu_ns, memory, processes, oom, refused, throttled)

    # --- signals ----------------------------------------------------------------------------
    def signal(self, sig: int) -> int:
        """Send ``sig`` to every process of the agent; returns how many were signalled."""
        n = 0
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
                n += 1
        return n

    def kill(self) -> bool:
        """SIGKILL every process, forking ones too; True once the cgroup is empty.

        v2 has ``cgroup.kill`` (atomic). Elsewhere the group is frozen first, so
        nothing forks between listing and killing, then killed and thawed.
        """
        if self.version == 2 and _write(self._track / "cgroup.kill", "1"):
            return not self.pids()
        freezer = self._file("freezer", "freezer.state") if self.version == 1 else self._track / "cgroup.freeze"
        frozen = False
        if freezer is not None and self.pids():
            frozen = _write(freezer, "FROZEN" if self.version == 1 else "1")
        for _ in range(5):
            if not self.signal(signal.SIGKILL):
                break
        if frozen and freezer is not None:
            _write(freezer, "THAWED" if self.version == 1 else "0")
        return not self.pids()

    def remove(self) -> bool:
        """Remove the directories (kills what is left first); True when all are gone."""
        self.kill()
        ok = True
        for d in self.unique_dirs:
            try:
                d.rmdir()
            except FileNotFoundError:
                pass
            except OSError:
                ok = False
        return ok


class Cgroups:
    """The fleet's cgroup directory in each hierarchy, and the agents' below it."""

    def __init__(self, version: Literal[1, 2], bases: dict[str, Path], controllers: set[str], tag: str) -> None:
        self.version = version
        #: controller -> the fleet's directory (v1); "" -> the fleet's directory (v2)
        self.bases = bases
        #: controllers whose files the agents' cgroups have (v2: those enabled for them)
        self.controllers = controllers
        self.tag = tag
        self._agents: dict[str, AgentCgroup] = {}

    def describe(self) -> str:
        where = ", ".join(str(p) for p in dict.fromkeys(self.bases.values()))
        return f"cgroup v{self.version} ({', '.join(sorted(self.controllers)) or 'tracking only'}): {where}"

    @property
    def can_limit(self) -> set[str]:
        """Which limits the kernel enforces here: ``memory``, ``pids``, ``cpu``."""
        return {c for c in ("memory", "pids", "cpu") if c in self.controllers}

    def agent(self, name: str) -> AgentCgroup | None:
        """The cgroup of agent instance ``name`` (created on first use); None if it cannot be."""
        cg = self._agents.get(name)
        if cg is not None:
            return cg
        safe = name.replace("#", "@").replace("/", "_")
        made: dict[Path, Path] = {}
        for base in dict.fromkeys(self.bases.values()):
            d = base / f"agent-{safe}"
            try:
                d.mkdir(exist_ok=True)
            except OSError:
                for done in made.values():
                    with contextlib.suppress(OSError):
                        done.rmdir()
                return None
            made[base] = d
        dirs = {controller: made[base] for controller, base in self.bases.items()}
        cg = self._agents[name] = AgentCgroup(self, dirs)
        return cg

    def forget(self, name: str) -> None:
        cg = self._agents.pop(name, None)
        if cg is not None:
            cg.remove()

    def remove(self) -> bool:
        """Kill and remove every agent's cgroup, then the fleet's."""
        ok = True
        for name in list(self._agents):
            cg = self._agents.pop(name)
            ok = cg.remove() and ok
        for base in dict.fromkeys(self.bases.values()):
            ok = remove_tree(base) and ok
        return ok

    # --- detection ----------------------------------------------------------------------------
    @classmethod
    def detect(cls, tag: str, mode: str | None = None) -> Cgroups | None:
        """The fleet's cgroups (created now), or None where none can be made."""
        mode = (mode or os.environ.get("FLEET_CGROUPS") or "auto").lower()
        if mode == "off" or not sys.platform.startswith("linux"):
            return None
        mounts = _mounts()
        own_v1, own_v2 = _own_paths()
        name = f"fleet-{os.getpid()}-{tag}"
        if mode in ("auto", "v2"):
            for fstype, point, root, _ in mounts:
                # auto: only a pure v2 system (mounted at /sys/fs/cgroup); v2 also takes a hybrid's
                if fstype == "cgroup2" and own_v2 is not None and (mode == "v2" or point == "/sys/fs/cgroup"):
                    found = cls._make_v2(_under(point, root, own_v2), name, tag)
                    if found is not None and found.can_attach():
                        return found
                    if found is not None:
                        found.remove()
        if mode in ("auto", "v1"):
            found = cls._make_v1(mounts, own_v1, name, tag)
            if found is not None and found.can_attach():
                return found
            if found is not None:
                found.remove()
        return None

    def can_attach(self) -> bool:
        """Whether a process may be moved into the agents' cgroups (found by trying, once, at start).

        Creating a directory is not enough: moving a process also needs write
        access to the cgroup it comes from and their common ancestor. An agent
        that could not join its cgroup would fail to start every time; here the
        fleet falls back to the process tree instead.
        """
        probe = self.agent(".probe")
        if probe is None:
            return False
        try:
            argv = wrap_argv(["true"], probe.procs_files, None, os.environ.get("PATH"))
            ok = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, timeout=10).returncode == 0
        except (OSError, subprocess.SubprocessError):
            ok = False
        self.forget(".probe")
        return ok

    @classmethod
    def _make_v1(cls, mounts: list[tuple[str, str, str, set[str]]], own: dict[str, str], name: str,
                 tag: str) -> Cgroups | None:
        bases: dict[str, Path] = {}
        seen_points: dict[str, str] = {}
        for controller in V1_CONTROLLERS:
            for fstype, point, root, options in mounts:
                if fstype != "cgroup" or controller not in options or controller not in own:
                    continue
                if point in seen_points:  # co-mounted (cpu,cpuacct): one directory serves both
                    bases[controller] = bases[seen_points[point]]
                    break
                parent = _under(point, root, own[controller])
                _sweep_stale(parent)
                d = parent / name
                try:
                    d.mkdir(exist_ok=True)
                except OSError:
                    break
                bases[controller] = d
                seen_points[point] = controller
                break
        if not bases:
            return None
        return cls(1, bases, set(bases), tag)

    @classmethod
    def _make_v2(cls, own: Path, name: str, tag: str) -> Cgroups | None:
        _sweep_stale(own)
        d = own / name
        try:
            d.mkdir(exist_ok=True)
        except OSError:
            return None
        available = set((_read(own / "cgroup.controllers") or "").split())
        wanted = [c for c in V2_CONTROLLERS if c in available]
        enabled: set[str] = set()
        if wanted:
            plus = " ".join(f"+{c}" for c in wanted)
            # A cgroup with processes cannot hand controllers to its children (v2's "no
            # internal processes"). Where the supervisor is alone in its cgroup (a delegated
            # systemd unit), it moves into a leaf of its own beside the fleet's directory;
            # where it is not (a login session's scope), the agents' cgroups track only.
            if not _write(own / "cgroup.subtree_control", plus) and _only_us(own):
                leaf = own / f"{name}.sup"
                with contextlib.suppress(OSError):
                    leaf.mkdir(exist_ok=True)
                    if _write(leaf / "cgroup.procs", str(os.getpid())):
                        _write(own / "cgroup.subtree_control", plus)
            _write(d / "cgroup.subtree_control", plus)
            enabled = {c.lstrip("+") for c in (_read(d / "cgroup.subtree_control") or "").split()}
        return cls(2, {"": d}, enabled, tag)


def _only_us(cgroup: Path) -> bool:
    """Whether this process is the only one in ``cgroup``."""
    pids = (_read(cgroup / "cgroup.procs") or "").split()
    return pids == [str(os.getpid())]


def _sweep_stale(parent: Path) -> None:
    """Remove the cgroups of fleets whose supervisor is gone (a crash, and its watchdog too)."""
    try:
        entries = list(parent.iterdir())
    except OSError:
        return
    for entry in entries:
        m = re.fullmatch(r"fleet-(\d+)-[0-9a-f]+(?:\.sup)?", entry.name)
        if m is None or not entry.is_dir():
            continue
        pid = int(m.group(1))
        if pid == os.getpid() or _alive(pid):  # ours (tests run several fleets), or alive
            continue
        remove_tree(entry)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def wrap_argv(argv: list[str], procs_files: list[Path], open_files: int | None, path: str | None) -> list[str]:
    """``argv`` started so that it joins its cgroup(s) and gets its rlimits before it runs.

    Raises ``FileNotFoundError``/``PermissionError`` for a program that cannot
    be run, as ``subprocess.Popen`` would (the shell would only exit 127).
    """
    program = argv[0]
    if "/" not in program:
        found = shutil.which(program, path=path)
        if found is None:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), program)
    elif not os.access(program, os.X_OK):
        err = errno.ENOENT if not os.path.exists(program) else errno.EACCES
        raise (FileNotFoundError if err == errno.ENOENT else PermissionError)(err, os.strerror(err), program)
    n = len(procs_files)
    script = "".join(f'echo $$ >"${i + 1}" || exit 126; ' for i in range(n))
    if open_files is not None:
        script += f"ulimit -n {int(open_files)} || exit 126; "
    script += f'shift {n}; exec "$@"' if n else 'exec "$@"'
    return ["/bin/sh", "-c", script, "fleet-agent", *(str(p) for p in procs_files), *argv]
