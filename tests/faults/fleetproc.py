"""A fleet in a process of its own (``fleet run``), for measuring what it holds (its RSS)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from tests.conftest import ROOT, write_fleet

MiB = 1024 * 1024


class FleetProcess:
    """``fleet run`` on a fleet directory; ``status()`` and ``call()`` through the blocking client."""

    def __init__(self, root: Path, fleet_toml: str, files: dict[str, str] | None = None,
                 preexec: Callable[[], None] | None = None) -> None:
        self.dir = write_fleet(root, fleet_toml, files)
        self.env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen([sys.executable, "-m", "fleet.cli", "-C", str(self.dir), "run", "-q"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=self.env,
                                     preexec_fn=preexec)
        self.ps = psutil.Process(self.proc.pid)
        self.socket = self.dir / ".fleet" / "control.sock"

    def call(self, op: str, **args: Any) -> Any:
        from fleet.control.blocking import BlockingClient

        with BlockingClient(self.socket, origin="test", timeout=30) as c:
            return c.call(op, **args)

    def status(self) -> dict[str, Any]:
        return self.call("status")

    def wait(self, pred: Callable[[dict[str, Any]], bool], timeout: float = 60, what: str = "") -> dict[str, Any]:
        """Poll ``status`` (another process: nothing to await) until ``pred`` holds."""
        deadline = time.monotonic() + timeout
        st: dict[str, Any] = {}
        while True:
            assert self.proc.poll() is None, self.proc.stderr.read().decode() if self.proc.stderr else ""
            try:
                st = self.status()
                if pred(st):
                    return st
            except Exception:  # not listening yet
                pass
            assert time.monotonic() < deadline, f"timed out waiting for {what}: {json.dumps(st)[:2000]}"
            time.sleep(0.1)

    def rss(self) -> int:
        return self.ps.memory_info().rss

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "fleet.cli", "-C", str(self.dir), *args],
                              capture_output=True, text=True, timeout=60, env=self.env)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
