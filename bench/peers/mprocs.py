"""mprocs (npm ``mprocs``) as a peer, where it means something: at rest, under a pseudo-terminal.

mprocs is a TUI that keeps output in per-process screen buffers: nothing is
persisted (flood n/a), autorestart skips processes that die within a second
(crash n/a), and it has no signal or config-reload command (pause, config
n/a). Idle cost is real, though: it runs here in a pty of 160x48 whose output
a thread drains, as a terminal would.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import struct
import termios
import threading
from pathlib import Path

from bench.common import Program, Workdir
from bench.peers import Peer, find_exe


class Mprocs(Peer):
    name = "mprocs"
    supports = frozenset({"idle"})
    na = {
        "flood": "a TUI: output lives in screen buffers, nothing is persisted",
        "crash": "autorestart ignores processes that exit within 1 s",
        "pause": "no command to signal one process",
        "config": "no config reload",
    }
    install = "npm install -g --prefix ~/.cache/fleet-bench/peers-npm mprocs"
    exes = ("mprocs",)

    def __init__(self) -> None:
        super().__init__()
        self._master = -1

    def start(self, wd: Workdir, programs: list[Program]) -> None:
        self.wd = wd
        self.programs = list(programs)
        d = wd.root / "mprocs"
        d.mkdir(parents=True, exist_ok=True)
        conf = d / "mprocs.yaml"
        # JSON is YAML.
        conf.write_text(json.dumps({"procs": {p.name: {"cmd": p.argv} for p in programs}}))
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 48, 160, 0, 0))
        import subprocess

        env = {**os.environ, "TERM": "xterm-256color"}
        self.proc = subprocess.Popen([find_exe("mprocs") or "mprocs", "--config", str(conf)], stdin=slave,
                                     stdout=slave, stderr=slave, env=env, cwd=d, start_new_session=True)
        os.close(slave)
        self._master = master
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        while True:
            try:
                if not os.read(self._master, 65536):
                    break
            except OSError:
                break

    def stop(self) -> None:
        super().stop()
        if self._master >= 0:
            os.close(self._master)
            self._master = -1

    def flood_files(self) -> list[Path]:
        return []
