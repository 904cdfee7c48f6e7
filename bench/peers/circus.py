"""circus (PyPI ``circus``) as a peer: an ini file, ``circusctl`` for control.

Each watcher's stdout goes to a ``FileStream`` (no rotation), the documented way
to keep a program's output on disk. Respawn is circus's default; circus has no
restart delay to configure, so ``fast_restart`` changes nothing. A config edit
is picked up with ``circusctl reloadconfig``.
"""

from __future__ import annotations

import shlex

from bench.common import Program, Workdir, wait_for
from bench.peers import IniPeer, find_exe


class Circus(IniPeer):
    name = "circus"
    supports = frozenset({"flood", "idle", "crash", "pause", "config"})
    install = "python3 -m venv ~/.cache/fleet-bench/peers && ~/.cache/fleet-bench/peers/bin/pip install circus"
    conf_name = "circus.ini"
    reload_args = ("reloadconfig",)
    exes = ("circusd", "circusctl")

    def _head(self) -> str:
        d = self.dir
        return (
            f"[circus]\nendpoint = ipc://{d}/endpoint\npubsub_endpoint = ipc://{d}/pubsub\n"
            f"stats_endpoint = ipc://{d}/stats\nstatsd = false\nloglevel = warning\n\n"
        )

    def _section(self, p: Program) -> str:
        respawn = "false" if p.restart == "never" else "true"
        return (
            f"[watcher:{p.name}]\ncmd = {shlex.join(p.argv)}\nnumprocesses = 1\nrespawn = {respawn}\n"
            f"copy_env = true\nstop_children = true\ngraceful_timeout = 5\n"
            f"stdout_stream.class = FileStream\nstdout_stream.filename = {self.dir}/{p.name}.out\n"
            f"stderr_stream.class = FileStream\nstderr_stream.filename = {self.dir}/{p.name}.err\n\n"
        )

    def start(self, wd: Workdir, programs: list[Program]) -> None:
        self.wd = wd
        self.programs = list(programs)
        self.dir = wd.root / "circus"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.conf.write_text(self._head() + "".join(self._section(p) for p in programs))
        self.proc = self._popen([find_exe("circusd") or "circusd", str(self.conf)],
                                stdout=open(wd.root / "circusd.stdout", "wb"))  # noqa: SIM115
        if not wait_for(lambda: "active" in self._ctl(self.ctl("status")) or None, 30, 0.1):
            raise RuntimeError("circusd did not answer")

    def ctl(self, *args: str) -> list[str]:
        assert self.dir is not None
        return [find_exe("circusctl") or "circusctl", "--endpoint", f"ipc://{self.dir}/endpoint", *args]

    def signal_cmd(self, name: str, sig: str) -> list[str] | None:
        return self.ctl("signal", name, sig)
