"""pm2 (npm ``pm2``) as a peer: an ecosystem file, the ``pm2`` CLI, a private ``PM2_HOME``.

pm2's supervisor is its "God daemon", started by the first ``pm2`` command and
found through ``$PM2_HOME/pm2.pid``; that daemon is what is sampled. Programs
run with ``interpreter: "none"`` (exec the command as given, no node wrapper)
and each writes its own ``out_file``; pm2's defaults are kept otherwise
(``restart_delay`` 0, ``min_uptime`` 1 s, ``max_restarts`` 16). ``pm2 kill``
ends the daemon and every app.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from bench.common import Program, Workdir, wait_for
from bench.peers import Peer, children_by_marker, find_exe


class Pm2(Peer):
    name = "pm2"
    supports = frozenset({"flood", "idle", "crash", "pause", "config"})
    install = "npm install -g --prefix ~/.cache/fleet-bench/peers-npm pm2"
    exes = ("pm2",)

    def __init__(self) -> None:
        super().__init__()
        self.dir: Path | None = None
        self.env: dict[str, str] = {}

    def missing(self) -> str | None:
        if not find_exe("node"):
            return "node not found (pm2 needs it)"
        return super().missing()

    def version(self) -> str:
        home = Path("/tmp/pm2-version-home")
        env = {**os.environ, "PM2_HOME": str(home)}
        exe = find_exe("pm2") or "pm2"
        out = self._ctl([exe, "--version"], env=env).strip().splitlines()[-1]
        self._ctl([exe, "kill"], env=env)  # `pm2 --version` starts a daemon: leave none behind
        return out

    def _app(self, p: Program) -> dict[str, object]:
        assert self.dir is not None
        return {
            "name": p.name, "script": p.argv[0], "args": p.argv[1:], "interpreter": "none",
            "autorestart": p.restart != "never", "out_file": str(self.dir / f"{p.name}.out"),
            "error_file": str(self.dir / f"{p.name}.err"), "kill_timeout": 5000,
        }

    def _write(self) -> Path:
        assert self.dir is not None
        path = self.dir / "ecosystem.config.js"
        path.write_text("module.exports = " + json.dumps({"apps": [self._app(p) for p in self.programs]}) + ";\n")
        return path

    def start(self, wd: Workdir, programs: list[Program]) -> None:
        self.wd = wd
        self.programs = list(programs)
        self.dir = wd.root / "pm2"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, "PM2_HOME": str(self.dir / "home")}
        eco = self._write()
        out = self._ctl([find_exe("pm2") or "pm2", "start", str(eco)], env=self.env)
        if not wait_for(lambda: self._daemon_pid(), 30, 0.05):
            raise RuntimeError(f"pm2 daemon did not start: {out[-500:]}")

    def _daemon_pid(self) -> int | None:
        try:
            return int((self.dir / "home" / "pm2.pid").read_text().strip())  # type: ignore[operator]
        except (OSError, ValueError):
            return None

    def roots(self) -> list[int]:
        pid = self._daemon_pid()
        return [pid] if pid else []

    def running_pids(self) -> dict[str, int]:
        assert self.wd is not None
        pid = self._daemon_pid()
        return children_by_marker(pid, str(self.wd.root)) if pid else {}

    def stop(self) -> None:
        if self.dir is None:
            return
        pid = self._daemon_pid()
        self._ctl([find_exe("pm2") or "pm2", "kill"], env=self.env)
        if pid:
            from bench.common import kill_tree

            kill_tree(pid)

    def flood_files(self) -> list[Path]:
        assert self.dir is not None
        return [self.dir / f"{p.name}.out" for p in self.programs]

    def signal_cmd(self, name: str, sig: str) -> list[str] | None:
        return [find_exe("pm2") or "pm2", "sendSignal", f"SIG{sig}", name]

    def add_program(self, prog: Program) -> None:
        self.programs.append(prog)
        eco = self._write()
        self._ctl([find_exe("pm2") or "pm2", "start", str(eco), "--only", prog.name], env=self.env)
