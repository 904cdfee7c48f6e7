"""Adapters that drive each supervisor — ours and the peers — through the same scenarios.

Why adapters: a scenario says *what* happens (start these programs, pause that
one, add one to the config) and each adapter says *how* the tool does it, the
way its documentation tells a user to (config file + its own CLI). Nothing here
installs anything: a peer whose executable is not found is reported absent with
the command that would install it. Executables are looked up in
``$BENCH_PEERS_BIN`` (a ``:``-separated list of directories, e.g. a venv's
``bin`` and an npm prefix's ``bin``), then in ``~/.cache/fleet-bench/peers/bin`` and
``~/.cache/fleet-bench/peers-npm/bin`` (where BENCHMARKS.md suggests installing them), then on
``PATH``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

from bench.common import LINE_BYTES, Program, Workdir, kill_tree, run_quiet

DEFAULT_PEER_DIRS = tuple(
    os.path.expanduser(d) for d in ("~/.cache/fleet-bench/peers/bin", "~/.cache/fleet-bench/peers-npm/bin")
)


def find_exe(name: str) -> str | None:
    """Where ``name`` is: the BENCH_PEERS_BIN directories, the default peer dirs, then PATH."""
    dirs = [d for d in os.environ.get("BENCH_PEERS_BIN", "").split(":") if d]
    for d in [*dirs, *DEFAULT_PEER_DIRS]:
        p = Path(d) / name
        if p.is_file() and os.access(p, os.X_OK):
            return str(p)
    return shutil.which(name)


class Peer:
    """One supervisor under test. Subclasses fill in the how."""

    name = "?"
    #: Scenario names this tool can take part in; others are n/a with ``na[scenario]`` as the reason.
    supports: frozenset[str] = frozenset()
    na: dict[str, str] = {}
    install = ""
    #: Executables the tool needs; the first one answers ``--version``.
    exes: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.wd: Workdir | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.programs: list[Program] = []

    # --- presence -----------------------------------------------------------------
    def missing(self) -> str | None:
        """None when the tool can run here, else why not (and how to install it)."""
        absent = [exe for exe in self.exes if not find_exe(exe)]
        return f"{', '.join(absent)} not found; install: {self.install}" if absent else None

    def version(self) -> str:
        if not self.exes:
            return ""
        return self._ctl([find_exe(self.exes[0]) or self.exes[0], "--version"]).strip()

    # --- life cycle ---------------------------------------------------------------
    def start(self, wd: Workdir, programs: list[Program]) -> None:
        raise NotImplementedError

    def roots(self) -> list[int]:
        """Pids of the supervisor itself (its helper children are found from these)."""
        return [self.proc.pid] if self.proc else []

    def running_pids(self) -> dict[str, int]:
        """Program name → pid of its running process, as far as we can tell from outside.

        By default the workloads found under the supervisor's own process.
        """
        assert self.proc is not None and self.wd is not None
        return children_by_marker(self.proc.pid, str(self.wd.root))

    def stop(self) -> None:
        if self.proc is not None:
            kill_tree(self.proc.pid, grace=5.0)
            self.proc.wait(5)
            self.proc = None

    # --- flood --------------------------------------------------------------------
    def flood_files(self) -> list[Path]:
        """The files holding the programs' stdout (file-based peers)."""
        return []

    def persisted_estimate(self) -> int:
        """Lines persisted so far, cheaply (file sizes); exactness comes from ``flood_lines``."""
        return sum(p.stat().st_size for p in self.flood_files() if p.exists()) // LINE_BYTES

    def flood_lines(self) -> Iterable[bytes | str]:
        from bench.common import file_lines

        return file_lines(self.flood_files())

    # --- control ------------------------------------------------------------------
    def signal_cmd(self, name: str, sig: str) -> list[str] | None:
        """The CLI command sending ``sig`` (STOP/CONT) to program ``name``; None if the tool has none."""
        return None

    def add_program(self, prog: Program) -> None:
        """Add ``prog`` to the config file and do what the tool needs to pick it up."""
        raise NotImplementedError

    # --- helpers ------------------------------------------------------------------
    def _popen(self, argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None,
               stdout: int | object = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
        return subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=stdout,  # type: ignore[arg-type]
                                stderr=subprocess.STDOUT if stdout is not subprocess.DEVNULL else subprocess.DEVNULL,
                                start_new_session=True)

    def _ctl(self, argv: list[str], env: dict[str, str] | None = None) -> str:
        r = run_quiet(argv, env=env)
        return r.stdout + r.stderr


class IniPeer(Peer):
    """A tool configured by one ini-style file of sections, one per program, each
    writing its stdout to ``<dir>/<program>.out`` (supervisord, circus)."""

    #: The config file's name in ``dir``, and the control command that re-reads it.
    conf_name = ""
    reload_args: tuple[str, ...] = ()

    def __init__(self) -> None:
        super().__init__()
        self.dir: Path | None = None

    @property
    def conf(self) -> Path:
        assert self.dir is not None
        return self.dir / self.conf_name

    def _section(self, p: Program) -> str:
        raise NotImplementedError

    def ctl(self, *args: str) -> list[str]:
        raise NotImplementedError

    def flood_files(self) -> list[Path]:
        assert self.dir is not None
        return [self.dir / f"{p.name}.out" for p in self.programs]

    def add_program(self, prog: Program) -> None:
        self.programs.append(prog)
        with open(self.conf, "a") as f:
            f.write(self._section(prog))
        self._ctl(self.ctl(*self.reload_args))


def children_by_marker(root: int, marker: str) -> dict[str, int]:
    """Descendant workload processes of ``root`` keyed by the program name found in their argv.

    Every workload argv ends with ``--name=<program>`` so it can be found the same way in any tool.
    """
    import psutil

    out: dict[str, int] = {}
    try:
        kids = psutil.Process(root).children(recursive=True)
    except psutil.NoSuchProcess:
        return out
    for k in kids:
        try:
            cmd = k.cmdline()
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            continue
        for c in cmd:
            if c.startswith("--name=") and any(marker in x for x in cmd):
                out.setdefault(c[7:], k.pid)
    return out


def wait_gone(pids: Iterable[int], timeout: float = 5.0) -> None:
    import psutil

    end = time.monotonic() + timeout
    for pid in pids:
        while psutil.pid_exists(pid) and time.monotonic() < end:
            time.sleep(0.02)


def all_peers() -> list[Peer]:
    from bench.peers.circus import Circus
    from bench.peers.fleet import Fleet, FleetConsole
    from bench.peers.honcho import Honcho
    from bench.peers.mprocs import Mprocs
    from bench.peers.pm2 import Pm2
    from bench.peers.supervisord import Supervisord

    return [Fleet(), FleetConsole(), Supervisord(), Circus(), Honcho(), Pm2(), Mprocs()]
