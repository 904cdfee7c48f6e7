"""A real full disk: a small tmpfs holds the fleet's state, filled mid-flood, then freed.

Every line the agent wrote before, during and after is stored, numbered without
a gap; while the disk is full the writer stays alive, the pipes are paused (the
agent blocks), ``status`` says what is wrong, and SIGTERM still ends the fleet
within its grace period, saying how many lines could not be stored.

Mounting needs root and CAP_SYS_ADMIN: elsewhere these tests are skipped with
the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleet.store.readers import tail
from tests.conftest import ROOT, write_fleet
from tests.faults.tmpfs import tmpfs as mounted_tmpfs

FLOOD = """
import os, sys, time
gate, done = sys.argv[1], sys.argv[2]
pad = "x" * 40
for i in range(1, {before} + 1):
    print(f"line {{i}} {{pad}}")
sys.stdout.flush()
while not os.path.exists(gate):
    time.sleep(0.01)
for i in range({before} + 1, {total} + 1):
    print(f"line {{i}} {{pad}}")
sys.stdout.flush()
open(done, "w").close()
"""
BEFORE, TOTAL = 20_000, 200_000  # ~10 MB in all: well past the pipes, the high-water mark is not


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    with mounted_tmpfs(tmp_path / "disk", "size=64m,mode=0700") as disk:
        yield disk


class Filler(threading.Thread):
    """Keeps ``disk`` full until ``free()``: what the fleet frees (its WAL, a cut batch) is taken back."""

    def __init__(self, disk: Path) -> None:
        super().__init__(daemon=True)
        self.disk = disk
        self.stop = threading.Event()
        fill(disk)

    def run(self) -> None:
        while not self.stop.wait(0.01):
            fill(self.disk, check=False)

    def free(self) -> None:
        self.stop.set()
        self.join()
        (self.disk / "filler").unlink()
        with contextlib.suppress(FileNotFoundError):
            (self.disk / "probe").unlink()


def fill(disk: Path, check: bool = True) -> Path:
    """Fill ``disk`` to the last byte; returns the filler file (delete it to free the space)."""
    path = disk / "filler"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (1 << 20, 1 << 12, 1):
            block = b"\0" * size
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, block)
    finally:
        os.close(fd)
    if not check:
        return path
    probe = os.open(disk / "probe", os.O_WRONLY | os.O_CREAT)
    try:
        with pytest.raises(OSError) as exc:
            os.write(probe, b"x" * 4096)
    finally:
        os.close(probe)
    assert exc.value.errno == errno.ENOSPC
    return path


def flood_fleet(root: Path, disk: Path) -> Path:
    return write_fleet(root, f"""
        [fleet]
        state_dir = "{disk}"

        [[agent]]
        name = "flood"
        command = ["{sys.executable}", "flood.py", "{root / 'gate'}", "{root / 'done'}"]
        env = {{ PYTHONUNBUFFERED = "1" }}
        [agent.restart]
        mode = "never"
        stop_grace_s = 1
        """, {"flood.py": FLOOD.format(before=BEFORE, total=TOTAL)})


async def _stuck(f) -> dict:
    """The fleet's status once the store is failing and the pipes are paused (re-read on each event)."""
    deadline = time.monotonic() + 30
    while True:
        st = await f.call("status")
        if st["store"]["ok"] is False and st["log_pressure"]:
            return st
        assert time.monotonic() < deadline, st
        n = len(f.events.events)
        with contextlib.suppress(AssertionError):
            await f.events.wait_for(lambda e, n=n: len(f.events.events) > n, 0.5)


def stored_lines(db: Path, agent: str) -> list:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return tail(conn, agent, TOTAL + 1000)
    finally:
        conn.close()


async def test_disk_full_mid_flood_then_freed_loses_nothing(tmpfs: Path, fleet_factory, tmp_path: Path) -> None:
    root = tmp_path / "fleet"
    flood_fleet(root, tmpfs)
    f = await fleet_factory((root / "fleet.toml").read_text(), {"flood.py": FLOOD.format(before=BEFORE, total=TOTAL)})
    store = f.sup.store
    gate, done = f.dir / "gate", f.dir / "done"
    await f.events.state("flood", "running")
    await f.events.wait_for(lambda e: e["event"] == "logs" and f"line {BEFORE} " in e["data"]["text"], 30)
    await store.flush()
    assert store.stats()["lines_written"] >= BEFORE
    filler = Filler(tmpfs)
    filler.start()
    await asyncio.to_thread(gate.touch)
    failing = await f.events.wait_for(lambda e: e["event"] == "store" and e["data"]["ok"] is False, 30)
    assert "disk full" in failing["data"]["error"]  # ENOSPC from a segment, or SQLITE_FULL
    # A nearly full disk may take one more small batch (freed by the failed one): wait until it is stuck.
    st = await _stuck(f)
    assert "disk full" in st["store"]["error"] and st["store"]["since"] >= failing["data"]["ts"] - 1
    assert f.runtime.store._writer.is_alive()
    assert not done.exists(), "the agent must be blocked on its pipe while the disk is full"
    # The text status says it too.
    r = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "fleet.cli", "-C", str(f.dir), "status"],
                                capture_output=True, text=True, timeout=30,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert "store: writes failing" in r.stdout and "disk full" in r.stdout, r.stdout + r.stderr

    freed = time.time()
    await asyncio.to_thread(filler.free)
    await f.events.wait_for(lambda e: e["event"] == "store" and e["data"]["ok"] is True and e["data"]["ts"] > freed, 30)
    await f.events.state("flood", "exited", 60)
    await asyncio.wait_for(f.sup.instances["flood"].output_drained(), 60)
    await asyncio.wait_for(store.flush(), 60)
    assert done.exists()
    st = await f.call("status")
    assert st["store"]["ok"] is True and st["store"]["dropped"] == 0

    lines = await asyncio.to_thread(stored_lines, tmpfs / "fleet.db", "flood")
    out = [line.text for line in lines if line.stream == "stdout"]
    assert len(out) == TOTAL
    assert out == [f"line {i} {'x' * 40}" for i in range(1, TOTAL + 1)]
    seqs = [line.seq for line in lines]
    assert seqs == list(range(1, len(seqs) + 1)), "line numbers have a gap"


def test_sigterm_while_the_disk_is_full_ends_within_grace_and_says_what_was_lost(
    tmpfs: Path, tmp_path: Path
) -> None:
    d = flood_fleet(tmp_path / "fleet", tmpfs)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    filler = None
    cli = [sys.executable, "-m", "fleet.cli", "-C", str(d)]
    proc = subprocess.Popen([*cli, "run", "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        def status() -> dict:
            r = subprocess.run([*cli, "status", "--json"], capture_output=True, text=True, timeout=30, env=env)
            return json.loads(r.stdout) if r.returncode == 0 else {}

        deadline = time.monotonic() + 30
        while (status().get("agents") or [{}])[0].get("lines", 0) < BEFORE:
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        filler = Filler(tmpfs)
        filler.start()
        (d / "gate").touch()
        deadline = time.monotonic() + 30
        while (status().get("store") or {}).get("ok", True):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        # Agents' grace (1 s) + reading what they left in the pipes + the store's grace (5 s).
        assert time.monotonic() - t0 < 15
        assert proc.returncode == 0, err
        text = err.decode()
        assert "log lines could not be stored (disk full" in text, text
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if filler is not None:
            filler.stop.set()
