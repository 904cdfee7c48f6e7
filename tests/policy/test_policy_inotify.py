"""The inotify backend of the policy watcher: chosen on Linux, no leaked descriptors, lost events rescanned.

Waits are on the watcher's callbacks (queues) with a timeout; nothing sleeps to synchronise.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import struct
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from watchfiles import Change

from fleet.policy import PolicyBook, PolicyWatcher, load_book
from fleet.policy import inotify as ino
from fleet.policy.inotify import InotifyEvent

from .test_policy_watcher import TIMEOUT, ops_text, usd

linux = pytest.mark.skipif(not ino.available(), reason="inotify is Linux-only")


def _is_inotify(fd: int) -> bool:
    try:
        return os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:inotify"
    except OSError:
        return False


class Running:
    def __init__(self, fleet_dir: Path) -> None:
        self.changes: asyncio.Queue[PolicyBook] = asyncio.Queue()
        self.recovered: asyncio.Queue[PolicyBook] = asyncio.Queue()
        self.watcher = PolicyWatcher(
            fleet_dir,
            self.changes.put_nowait,
            lambda errors: None,
            book=load_book(fleet_dir),
            on_recover=self.recovered.put_nowait,
        )
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> Running:
        self.task = asyncio.create_task(self.watcher.run())
        await asyncio.wait_for(self.watcher.ready.wait(), TIMEOUT)
        return self

    async def change(self) -> PolicyBook:
        return await asyncio.wait_for(self.changes.get(), TIMEOUT)

    async def stop(self) -> None:
        assert self.task is not None
        self.watcher.stop()
        await asyncio.wait_for(self.task, TIMEOUT)


@pytest.fixture
async def running(fleet_dir: Path) -> AsyncIterator[Running]:
    r = await Running(fleet_dir).start()
    yield r
    if not r.task.done():  # type: ignore[union-attr]
        await r.stop()


@linux
async def test_linux_watches_with_inotify_on_the_loop(running: Running, fleet_dir: Path) -> None:
    assert running.watcher.active_backend == "inotify"
    (fleet_dir / "policies/ops.toml").write_text(ops_text(3.0))
    assert usd(await running.change()) == 3.0


def track_instances(monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    """Count the watcher's own inotify instances still open (not the process's: watchfiles
    instances of other tests close from their own threads whenever they like)."""
    made: list[ino.Inotify] = []
    real_init = ino.Inotify.__init__

    def init(self: ino.Inotify) -> None:
        real_init(self)
        made.append(self)

    monkeypatch.setattr(ino.Inotify, "__init__", init)
    return lambda: sum(1 for inst in made if inst.fd != -1 and _is_inotify(inst.fd))


@linux
async def test_no_descriptor_leaks_on_stop_restart_or_cancel(fleet_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    open_instances = track_instances(monkeypatch)
    r = await Running(fleet_dir).start()
    assert open_instances() == 1
    await r.stop()
    assert open_instances() == 0

    r = await Running(fleet_dir).start()
    saved = (fleet_dir / "policies").rename(fleet_dir / "saved")
    shutil.copytree(saved, fleet_dir / "policies")  # policies/ replaced: the watch restarts
    (fleet_dir / "policies/ops.toml").write_text(ops_text(4.0))
    assert usd(await r.change()) == 4.0
    assert open_instances() == 1
    assert r.task is not None
    r.task.cancel()  # as FleetRuntime.stop does
    with contextlib.suppress(asyncio.CancelledError):
        await r.task
    assert open_instances() == 0

    r = await Running(fleet_dir).start()
    (fleet_dir / "policies/ops.toml").write_text(ops_text(5.0))
    await asyncio.sleep(0)  # one loop turn: cancelled with a save in flight, not while idle
    assert r.task is not None
    r.task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await r.task
    assert open_instances() == 0


def rewrite_reads(monkeypatch: pytest.MonkeyPatch, rewrite: Callable[[list[InotifyEvent]], list[InotifyEvent]]) -> None:
    """Make every read of an inotify descriptor return ``rewrite(events)`` instead."""
    read = ino.Inotify.read
    monkeypatch.setattr(ino.Inotify, "read", lambda self: rewrite(read(self)))


@linux
async def test_a_queue_overflow_rescans(running: Running, fleet_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The kernel dropped the events of this save and queued IN_Q_OVERFLOW instead.
    overflow = InotifyEvent(-1, ino.IN_Q_OVERFLOW, 0, "")
    rewrite_reads(monkeypatch, lambda events: [overflow] if events else [])
    (fleet_dir / "policies/ops.toml").write_text(ops_text(6.0))
    assert usd(await running.change()) == 6.0
    monkeypatch.undo()  # and the re-established watch sees the next save
    (fleet_dir / "policies/ops.toml").write_text(ops_text(7.0))
    assert usd(await running.change()) == 7.0
    assert running.watcher.active_backend == "inotify"


@linux
async def test_an_unknown_event_reloads(running: Running, fleet_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    unknown = 0x00001000  # no IN_* bit
    rewrite_reads(monkeypatch, lambda events: [e._replace(mask=unknown) if e.name else e for e in events])
    (fleet_dir / "policies/ops.toml").write_text(ops_text(8.0))
    assert usd(await running.change()) == 8.0


@linux
async def test_falls_back_to_watchfiles_when_inotify_is_unavailable(
    fleet_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def add_watch(self: ino.Inotify, path: object, mask: int = 0) -> int:
        raise ino.InotifyUnavailable("inotify_add_watch: No space left on device")  # max_user_watches

    monkeypatch.setattr(ino.Inotify, "add_watch", add_watch)
    open_instances = track_instances(monkeypatch)
    with caplog.at_level(logging.WARNING, "fleet.policy.watcher"):
        r = await Running(fleet_dir).start()
    assert r.watcher.active_backend == "watchfiles"
    assert "inotify unavailable" in caplog.text
    # The failed instance was closed at once (counting the process's inotify descriptors
    # instead would race with watchfiles' own, which its thread closes when it likes).
    assert open_instances() == 0
    (fleet_dir / "policies/ops.toml").write_text(ops_text(9.0))
    assert usd(await r.change()) == 9.0
    await r.stop()


@linux
async def test_stop_returns_promptly_while_idle(running: Running) -> None:
    running.watcher.stop()
    assert running.task is not None
    await asyncio.wait_for(running.task, 0.5)


def packed(wd: int, mask: int, name: bytes = b"", cookie: int = 0, pad: int = 0) -> bytes:
    name = name + b"\0" * pad if name or pad else b""
    return struct.pack("iIII", wd, mask, cookie, len(name)) + name


def test_parse_events() -> None:
    data = (
        packed(1, ino.IN_CREATE, b"ops.toml", pad=8)
        + packed(2, ino.IN_MOVED_FROM, b"a", cookie=7, pad=15)
        + packed(2, ino.IN_DELETE_SELF)
        + packed(-1, ino.IN_Q_OVERFLOW)
    )
    assert ino.parse_events(data + b"\1\2\3") == [  # a torn tail is dropped
        InotifyEvent(1, ino.IN_CREATE, 0, "ops.toml"),
        InotifyEvent(2, ino.IN_MOVED_FROM, 7, "a"),
        InotifyEvent(2, ino.IN_DELETE_SELF, 0, ""),
        InotifyEvent(-1, ino.IN_Q_OVERFLOW, 0, ""),
    ]


def test_changes_of() -> None:
    dirs = {1: "/f", 2: "/f/policies"}

    def changes(*events: InotifyEvent) -> list[tuple[Change, str]]:
        return ino.changes_of(list(events), dirs, lambda change, path: not path.endswith(".swp"))

    assert changes(
        InotifyEvent(1, ino.IN_CREATE | ino.IN_ISDIR, 0, "policies"),
        InotifyEvent(2, ino.IN_MOVED_TO, 3, "ops.toml"),
        InotifyEvent(2, ino.IN_MOVED_FROM, 3, "ops.toml"),
        InotifyEvent(2, ino.IN_DELETE, 0, "x.toml"),
        InotifyEvent(2, ino.IN_CLOSE_WRITE, 0, "a.toml"),
        InotifyEvent(2, ino.IN_ATTRIB, 0, "b.toml"),
        InotifyEvent(2, 0x1000, 0, "c.toml"),  # unknown: a modification, so a reload
        InotifyEvent(2, ino.IN_MODIFY, 0, ".a.toml.swp"),  # filtered
        InotifyEvent(2, ino.IN_ATTRIB | ino.IN_ISDIR, 0, ""),  # the directory's own
        InotifyEvent(9, ino.IN_MODIFY, 0, "stale.toml"),  # a watch that is not ours (any more)
    ) == [
        (Change.added, "/f/policies"),
        (Change.added, "/f/policies/ops.toml"),
        (Change.deleted, "/f/policies/ops.toml"),
        (Change.deleted, "/f/policies/x.toml"),
        (Change.modified, "/f/policies/a.toml"),
        (Change.modified, "/f/policies/b.toml"),
        (Change.modified, "/f/policies/c.toml"),
    ]
    for gone in (ino.IN_DELETE_SELF, ino.IN_MOVE_SELF, ino.IN_IGNORED, ino.IN_UNMOUNT):
        with pytest.raises(ino.WatchLost):
            changes(InotifyEvent(2, gone, 0, ""))
    with pytest.raises(ino.WatchLost, match="overflow"):
        changes(InotifyEvent(-1, ino.IN_Q_OVERFLOW, 0, ""))


@pytest.mark.skipif(sys.platform.startswith("linux"), reason="elsewhere only")
def test_unavailable_off_linux() -> None:
    assert not ino.available()
    with pytest.raises(ino.InotifyUnavailable):
        ino.Inotify()
