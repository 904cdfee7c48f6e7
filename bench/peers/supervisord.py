"""supervisord (PyPI ``supervisor``) as a peer: an ini file, ``supervisorctl`` for control.

Configured the way its docs tell a user to keep every line: one
``stdout_logfile`` per program with ``*_maxbytes=0`` (no rotation, so nothing
is dropped). ``startsecs`` stays at its default (1 s) for restarting programs,
as a user gets it; ``fast_restart`` sets it to 0, the smallest delay it allows
(an immediate exit then counts as a run, and ``autorestart`` restarts it at once).
"""

from __future__ import annotations

import shlex

from bench.common import Program, Workdir, wait_for
from bench.peers import IniPeer, find_exe

HEAD = """\
[unix_http_server]
file=%(here)s/supervisor.sock

[supervisord]
logfile=%(here)s/supervisord.log
pidfile=%(here)s/supervisord.pid
childlogdir=%(here)s
nodaemon=true
loglevel=warn

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://%(here)s/supervisor.sock

"""


class Supervisord(IniPeer):
    name = "supervisord"
    supports = frozenset({"flood", "idle", "crash", "pause", "config"})
    install = "python3 -m venv ~/.cache/fleet-bench/peers && ~/.cache/fleet-bench/peers/bin/pip install supervisor"
    conf_name = "supervisord.conf"
    reload_args = ("update",)
    exes = ("supervisord", "supervisorctl")

    def _section(self, p: Program) -> str:
        assert self.dir is not None
        autorestart = {"never": "false", "on-failure": "unexpected", "always": "true"}[p.restart]
        startsecs = "0" if (p.restart == "never" or p.fast_restart) else "1"
        return (
            f"[program:{p.name}]\ncommand={shlex.join(p.argv)}\nautostart=true\nautorestart={autorestart}\n"
            f"startsecs={startsecs}\nexitcodes=0\nstopasgroup=true\nkillasgroup=true\nstopwaitsecs=5\n"
            f"stdout_logfile={self.dir}/{p.name}.out\nstdout_logfile_maxbytes=0\nstdout_logfile_backups=0\n"
            f"stderr_logfile={self.dir}/{p.name}.err\nstderr_logfile_maxbytes=0\nstderr_logfile_backups=0\n\n"
        )

    def start(self, wd: Workdir, programs: list[Program]) -> None:
        self.wd = wd
        self.programs = list(programs)
        self.dir = wd.root / "supervisord"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.conf.write_text(HEAD + "".join(self._section(p) for p in programs))
        self.proc = self._popen([find_exe("supervisord") or "supervisord", "-c", str(self.conf)],
                                stdout=open(wd.root / "supervisord.stdout", "wb"))  # noqa: SIM115
        first = programs[0].name
        if not wait_for(lambda: first in self._ctl(self.ctl("status")) or None, 30, 0.1):
            raise RuntimeError("supervisord did not answer")

    def ctl(self, *args: str) -> list[str]:
        return [find_exe("supervisorctl") or "supervisorctl", "-c", str(self.conf), *args]

    def signal_cmd(self, name: str, sig: str) -> list[str] | None:
        return self.ctl("signal", sig, name)
