"""A damaged or unwritable store: one clear line, the old file kept, read-only commands still read.

Corrupt and truncated ``fleet.db`` files used to end ``fleet run``, ``fleet
logs`` and ``fleet report`` in a raw SQLite traceback.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleet.records import Event
from fleet.runtime import FleetRuntime
from fleet.store import Store, StoreUnavailable
from tests.conftest import ROOT, write_fleet
from tests.faults.tmpfs import tmpfs
from tests.store.conftest import make_chunks

FLEET = '[[agent]]\nname = "a"\ncommand = ["sleep", "600"]\n'


def cli(d: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fleet.cli", "-C", str(d), *args], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})


async def make_store(db: Path, lines: int = 20_000) -> None:
    store = await Store.open(db)
    store.append_logs(make_chunks("a", 1, lines, 500))
    for i in range(50):
        await store.add_event(Event("state", "a", {"state": "running", "n": i}, 0))
    await store.close()


async def start_and_stop(d: Path) -> FleetRuntime:
    rt = FleetRuntime(d, watch=False)
    try:
        await rt.start(spawn=False)
        st = rt.sup.status()
        assert st["store"]["ok"] is True
    finally:
        await rt.stop()
    return rt


async def test_a_file_that_is_not_a_database_is_moved_aside_and_a_new_store_started(tmp_path, capsys) -> None:
    d = write_fleet(tmp_path / "f", FLEET)
    state = d / ".fleet"
    state.mkdir(mode=0o700)
    (state / "fleet.db").write_bytes(b"this is not a database\n" * 100)
    (state / "logs").mkdir()
    (state / "logs" / "00000001.log").write_bytes(b"old log text\n")
    await start_and_stop(d)
    err = capsys.readouterr().err
    (line,) = [ln for ln in err.splitlines() if "damaged" in ln]
    assert f"the fleet's store {state / 'fleet.db'} was damaged (not a SQLite database)" in line
    assert "moved it aside to fleet.db.damaged-" in line and "started a new one; the old one is kept" in line
    kept = [p for p in state.iterdir() if p.name.startswith("fleet.db.damaged-")]
    assert len(kept) == 1 and kept[0].read_bytes().startswith(b"this is not a database")
    old_logs = [p for p in state.iterdir() if p.name.startswith("logs.damaged-")]
    assert (old_logs[0] / "00000001.log").read_bytes() == b"old log text\n"
    # The new store works, and says in its events what happened.
    store = await Store.open(state / "fleet.db", readonly=True)
    try:
        events = await store.events(kinds=["store"])
        assert events and events[-1].data["recovered"] is True and "damaged" in events[-1].data["message"]
    finally:
        await store.close()


async def test_a_truncated_store(tmp_path, capsys) -> None:
    d = write_fleet(tmp_path / "f", FLEET)
    db = d / ".fleet" / "fleet.db"
    await make_store(db)
    os.truncate(db, db.stat().st_size // 2)
    # Read-only commands first: whatever they can read, or one line; never a traceback.
    for args in (("logs", "a", "-n", "5"), ("report",)):
        r = cli(d, *args)
        assert "Traceback" not in r.stderr, r.stderr
        if r.returncode:
            assert r.stderr.count("\n") == 1 and str(db) in r.stderr, r.stderr
    r = cli(d, "logs", "a", "-n", "3")
    assert r.returncode == 0, r.stderr
    assert "database disk image is malformed" in r.stderr and "showing the lines that could still be read" in r.stderr
    shown = r.stdout.splitlines()
    assert len(shown) == 3 and all("a line " in ln for ln in shown)  # the newest lines it could read
    # The fleet moves it aside and starts.
    await start_and_stop(d)
    err = capsys.readouterr().err
    assert "was damaged (truncated: " in err and "moved it aside" in err
    assert any(p.name.startswith("fleet.db.damaged-") for p in db.parent.iterdir())


@pytest.fixture
def ro_mount(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "ro", "size=32m") as disk:
        yield disk


async def test_a_read_only_state_directory(ro_mount: Path, tmp_path: Path) -> None:
    d = write_fleet(tmp_path / "f", f'[fleet]\nstate_dir = "{ro_mount / "state"}"\n\n' + FLEET)
    await make_store(ro_mount / "state" / "fleet.db", lines=1000)
    r = await asyncio.to_thread(subprocess.run, ["mount", "-o", "remount,ro", str(ro_mount)],
                                capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot remount read-only: {r.stderr.strip()}")
    with pytest.raises(StoreUnavailable) as exc:
        rt = FleetRuntime(d, watch=False)
        try:
            await rt.start(spawn=False)
        finally:
            await rt.stop()
    message = str(exc.value)
    assert "\n" not in message and str(ro_mount / "state") in message
    assert "make" in message and "writable" in message and "state_dir" in message
    r = cli(d, "run")
    assert r.returncode == 1 and "Traceback" not in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith("fleet: cannot write the fleet's store")
    r = cli(d, "up")
    assert r.returncode == 1 and "Traceback" not in r.stderr and "cannot write the fleet's store" in r.stderr, r.stderr
    # What is there can still be read.
    r = cli(d, "logs", "a", "-n", "2")
    assert r.returncode == 0 and "a line 1000 payload" in r.stdout, r.stderr
    r = cli(d, "report", "--format", "json")
    assert r.returncode == 0, r.stderr
