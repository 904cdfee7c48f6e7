"""honcho (PyPI ``honcho``) as a peer: a Procfile, output to its own stdout (a file here).

honcho, like foreman, is a process *runner*: no restarts (one exit stops them
all), no signals to one process, no reload — those scenarios are n/a. Its
output is the documented ``HH:MM:SS name | line`` prefix without colour.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from bench.common import LINE_BYTES, Program, Workdir
from bench.peers import Peer, find_exe


class Honcho(Peer):
    name = "honcho"
    supports = frozenset({"flood", "idle"})
    na = {
        "crash": "no restarts: when one process exits honcho stops them all",
        "pause": "no way to signal one process",
        "config": "no reload: the Procfile is read once",
    }
    install = "python3 -m venv ~/.cache/fleet-bench/peers && ~/.cache/fleet-bench/peers/bin/pip install honcho"
    exes = ("honcho",)

    def __init__(self) -> None:
        super().__init__()
        self.dir: Path | None = None
        self._line_bytes = 0

    def start(self, wd: Workdir, programs: list[Program]) -> None:
        self.wd = wd
        self.programs = list(programs)
        self.dir = wd.root / "honcho"
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "Procfile").write_text("".join(f"{p.name}: {shlex.join(p.argv)}\n" for p in programs))
        self._line_bytes = 0
        self.proc = self._popen([find_exe("honcho") or "honcho", "--no-colour", "-f", str(self.dir / "Procfile"),
                                 "start"], cwd=self.dir, stdout=open(self.dir / "out.log", "wb"))  # noqa: SIM115

    def flood_files(self) -> list[Path]:
        assert self.dir is not None
        return [self.dir / "out.log"]

    def persisted_estimate(self) -> int:
        path = self.flood_files()[0]
        if not self._line_bytes:
            # The prefix has a fixed width (time, padded name): learn it from the first flood line.
            try:
                with open(path, "rb") as f:
                    for line in f:
                        if b"xxxxx" in line:
                            self._line_bytes = len(line)
                            break
            except OSError:
                return 0
            if not self._line_bytes:
                return 0
        try:
            return path.stat().st_size // (self._line_bytes or LINE_BYTES)
        except OSError:
            return 0
