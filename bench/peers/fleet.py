"""Our fleet as a peer: headless ``fleet run``, and the same with a console attached.

Why two columns: the console is where a user watches a flood, so its cost on
the supervisor (the subscription fan-out) and its own CPU belong in the table.
The console runs headless (Textual's test driver: no terminal, same widgets
and timers) in ``bench.peers.console_attach``, attached over the control socket
as a second ``fleet console`` would; its pid is sampled together with the
supervisor's, so the fleet+console column is the whole cost to the user.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import ControlSocket, Program, Workdir, kill_tree, wait_for
from bench.peers import Peer

FLEET_SCENARIOS = frozenset({"flood", "idle", "crash", "pause", "config"})


def fleet_exe() -> str:
    exe = Path(sys.executable).with_name("fleet")
    return str(exe) if exe.exists() else "fleet"


def agent_toml(p: Program) -> str:
    out = [
        "[[agent]]",
        f"name = {json.dumps(p.name)}",
        f"command = {json.dumps(p.argv)}",
        "[agent.restart]",
        f'mode = "{p.restart}"',
    ]
    if p.fast_restart:
        out.append("backoff_initial_s = 0")
    return "\n".join(out) + "\n\n"


class Fleet(Peer):
    name = "fleet"
    supports = FLEET_SCENARIOS
    console = False

    def __init__(self) -> None:
        super().__init__()
        self.dir: Path | None = None
        self.console_proc: subprocess.Popen[bytes] | None = None
        self.sock: ControlSocket | None = None
        #: Incremental count for ``persisted_estimate``: (connection, highest row id seen, stdout lines up to it).
        self._est: tuple[Any, int, int] | None = None
        #: Environment added for ``fleet run`` (e.g. the ``busy`` scenario's indexing off).
        self.extra_env: dict[str, str] = {}

    def version(self) -> str:
        from importlib.metadata import version

        return version("fleet-console")

    @property
    def db(self) -> Path:
        assert self.dir is not None
        return self.dir / ".fleet" / "fleet.db"

    def start(self, wd: Workdir, programs: list[Program]) -> None:
        self.wd = wd
        self.programs = list(programs)
        self._est = None
        self.dir = wd.root / "fleet"
        self.dir.mkdir(parents=True, exist_ok=True)
        text = '[fleet]\nname = "bench"\nlog_retention_days = "off"\n\n' + "".join(agent_toml(p) for p in programs)
        (self.dir / "fleet.toml").write_text(text)
        self.proc = self._popen([fleet_exe(), "-C", str(self.dir), "run", "-q"],
                                env={**os.environ, **self.extra_env} if self.extra_env else None,
                                stdout=open(wd.root / "fleet-run.log", "wb"))  # noqa: SIM115
        sock = self.dir / ".fleet" / "control.sock"
        if not wait_for(lambda: self._connect(sock), 30, 0.05):
            raise RuntimeError(f"fleet did not answer on {sock}")
        if self.console:
            self.console_proc = self._popen(
                [sys.executable, "-m", "bench.peers.console_attach", str(self.dir), str(wd.root / "console.json")],
                stdout=open(wd.root / "console.log", "wb"),  # noqa: SIM115
            )
            if not wait_for(lambda: (wd.root / "console.json.ready").exists(), 60, 0.05):
                raise RuntimeError("console did not come up (see console.log)")

    def _connect(self, sock: Path) -> bool:
        if not sock.exists():
            return False
        try:
            self.sock = ControlSocket(sock)
            self.sock.call("status")
            return True
        except (OSError, RuntimeError, ConnectionError):
            return False

    def roots(self) -> list[int]:
        pids = super().roots()
        if self.console_proc is not None:
            pids.append(self.console_proc.pid)
        return pids

    def status(self) -> dict[str, object]:
        assert self.sock is not None
        return self.sock.call("status")  # type: ignore[no-any-return]

    def stop(self) -> None:
        if self._est is not None:
            self._est[0].close()
            self._est = None
        if self.console_proc is not None:
            kill_tree(self.console_proc.pid)
            self.console_proc.wait(5)
            self.console_proc = None
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self.proc is not None:
            # SIGTERM is `fleet run`'s documented stop: agents get their grace, logs are flushed.
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                kill_tree(self.proc.pid)
            self.proc = None

    # --- flood: lines committed to fleet.db ---------------------------------------
    def _ro(self) -> object:
        import sqlite3

        return sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5)

    def persisted_estimate(self) -> int:
        """Stdout lines committed so far, exactly, reading only the rows committed since the last poll.

        The peers' estimate is a ``stat`` of their log files; summing every row on
        each 20 ms poll cost the bench ~20 ms of CPU per poll late in the flood,
        taken from the same two cores the fleet and the writers share. Rows are
        committed in id order by the single writer, so "rows above the last id
        seen" are exactly the new ones.
        """
        import sqlite3

        if not self.db.exists():
            return 0
        try:
            if self._est is None:
                self._est = (self._ro(), 0, 0)
            conn, upto, total = self._est
            top, added = conn.execute(
                "SELECT MAX(id), COALESCE(SUM(count) FILTER (WHERE stream = 'stdout'), 0)"
                " FROM log_chunks WHERE id > ?",
                (upto,),
            ).fetchone()
        except sqlite3.Error:
            return self._est[2] if self._est is not None else 0
        if top is not None:
            self._est = (conn, top, total + added)
        return self._est[2]

    def index_caught_up(self) -> bool:
        """Every committed chunk is in the full-text index (``meta.fts_upto`` has reached the last id)."""
        import sqlite3

        if self._est is None:
            return False
        try:
            upto, top = self._est[0].execute(
                "SELECT (SELECT value FROM meta WHERE key = 'fts_upto'), (SELECT MAX(id) FROM log_chunks)"
            ).fetchone()
        except sqlite3.Error:
            return False
        return top is not None and upto is not None and int(upto) >= top

    def flood_lines(self) -> list[str]:
        from fleet.store.readers import chunk_texts

        conn = self._ro()
        out: list[str] = []
        try:
            for text in chunk_texts(conn, ["stdout"]):  # type: ignore[arg-type]
                out.extend(text.splitlines())
        finally:
            conn.close()  # type: ignore[attr-defined]
        return out

    # --- control ------------------------------------------------------------------
    def signal_cmd(self, name: str, sig: str) -> list[str] | None:
        assert self.dir is not None
        return [fleet_exe(), "-C", str(self.dir), "pause" if sig == "STOP" else "resume", name]

    def api_signal(self, name: str, sig: str) -> None:
        """Pause/resume over the control socket (what the console does), no CLI start-up."""
        assert self.sock is not None
        self.sock.call("pause" if sig == "STOP" else "resume", names=[name])

    def add_program(self, prog: Program) -> None:
        assert self.dir is not None
        path = self.dir / "fleet.toml"
        with open(path, "a") as f:
            f.write(agent_toml(prog))
            f.flush()
            os.fsync(f.fileno())


class FleetConsole(Fleet):
    name = "fleet+console"
    console = True
    # The console changes nothing in how agents restart, pause or reload: measured on the flood and at rest.
    supports = frozenset({"flood", "idle"})
    na = {s: "same supervisor path as `fleet`; the console only adds a subscriber" for s in
          ("crash", "pause", "config")}

    def missing(self) -> str | None:
        try:
            import console.app  # noqa: F401
        except Exception as exc:
            return f"console not importable: {exc}"
        return None


def started_at(path: Path, timeout: float) -> float | None:
    """The timestamp a ``started.sh`` wrote, once it exists."""

    def read() -> float | None:
        try:
            return float(path.read_text().strip())
        except (OSError, ValueError):
            return None

    return wait_for(read, timeout, 0.002)


_ = time  # (kept for adapters that import it from here)
