"""Watch a few directories with inotify(7) on the asyncio loop: no wake-ups while idle.

watchfiles runs its Rust watcher in a thread that wakes every ``step`` (10 ms
for policy reload) and takes the GIL to look for changes: ~0.6 % of a core in a
supervisor that otherwise sleeps. An inotify descriptor registered with
``loop.add_reader`` costs nothing until the kernel has an event for it. libc's
``inotify_init1``/``inotify_add_watch`` are reached through ctypes (glibc and
musl both export them), so no dependency is added.

:func:`awatch` mirrors the slice of ``watchfiles.awatch`` the policy watcher
uses — directories watched non-recursively, a filter, step/debounce batching, a
stop event — so both backends feed one loop. What watchfiles papers over is
raised instead, for the caller to re-establish the watch and rescan:
:class:`WatchLost` when a watched directory was deleted, moved or unmounted, or
the kernel's queue overflowed (events were dropped); :class:`InotifyUnavailable`
when inotify cannot be used here at all (not Linux, instance or watch limit
reached): fall back to watchfiles then. ``OSError`` means a path cannot be
watched (missing, not a directory, no permission), as with watchfiles.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import functools
import os
import struct
import sys
from collections.abc import AsyncGenerator, Callable
from enum import IntEnum
from pathlib import Path
from typing import NamedTuple


class Change(IntEnum):
    """What happened to a directory entry: the values of ``watchfiles.Change``.

    Defined here so that the supervisor imports watchfiles (its Rust watcher and
    anyio, ~1.4 MB of RSS) only when it falls back to it; the fallback's changes
    compare equal to these.
    """

    added = 1
    modified = 2
    deleted = 3

# <sys/inotify.h>
IN_MODIFY = 0x00000002
IN_ATTRIB = 0x00000004
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_UNMOUNT = 0x00002000
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_ISDIR = 0x40000000

WATCH_MASK = (
    IN_CREATE
    | IN_DELETE
    | IN_MODIFY
    | IN_CLOSE_WRITE
    | IN_MOVED_FROM
    | IN_MOVED_TO
    | IN_ATTRIB
    | IN_DELETE_SELF
    | IN_MOVE_SELF
    | IN_ONLYDIR
)
# The watched directory itself is gone (or its watch was dropped): nothing more will come from it.
_SELF_GONE = IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED | IN_UNMOUNT
_ADDED = IN_CREATE | IN_MOVED_TO
_DELETED = IN_DELETE | IN_MOVED_FROM

# struct inotify_event { int wd; uint32_t mask, cookie, len; char name[len]; } — name NUL-padded.
_HEADER = struct.Struct("iIII")
_READ_SIZE = 64 * 1024  # whole events only; one holds at most 16 + NAME_MAX + 1 bytes

Changes = set[tuple[Change, str]]


class InotifyUnavailable(Exception):
    """inotify cannot be used by this process (platform, libc, limits): use another watcher."""


class WatchLost(Exception):
    """The watch no longer covers what was asked (a directory went, events were dropped): re-watch and rescan."""


class InotifyEvent(NamedTuple):
    wd: int
    mask: int
    cookie: int
    name: str  # "" for an event on the watched directory itself


@functools.cache
def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)  # the process's own libc, without a find_library subprocess
        init1, add_watch = libc.inotify_init1, libc.inotify_add_watch
    except (OSError, AttributeError):
        return None
    init1.argtypes, init1.restype = [ctypes.c_int], ctypes.c_int
    add_watch.argtypes, add_watch.restype = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32], ctypes.c_int
    return libc


def available() -> bool:
    """Whether this platform's libc offers inotify (limits can still make it fail later)."""
    return _libc() is not None


def parse_events(data: bytes) -> list[InotifyEvent]:
    """Split what one ``read`` of an inotify descriptor returned into events (a torn tail is dropped)."""
    events: list[InotifyEvent] = []
    offset = 0
    while offset + _HEADER.size <= len(data):
        wd, mask, cookie, length = _HEADER.unpack_from(data, offset)
        offset += _HEADER.size
        name = os.fsdecode(data[offset : offset + length].split(b"\0", 1)[0])
        offset += length
        events.append(InotifyEvent(wd, mask, cookie, name))
    return events


def change_of(mask: int) -> Change:
    """The watchfiles ``Change`` of an event on a directory entry.

    A rename counts as a deletion and an addition, as in watchfiles. Anything
    not recognisably an addition or a deletion is a modification: an unknown
    kind of event then costs a reload rather than a missed save.
    """
    if mask & _ADDED:
        return Change.added
    if mask & _DELETED:
        return Change.deleted
    return Change.modified


def changes_of(
    events: list[InotifyEvent], dirs: dict[int, str], watch_filter: Callable[[Change, str], bool]
) -> list[tuple[Change, str]]:
    """Map events of the watches ``dirs`` (wd → directory) to filtered changes; raise WatchLost as documented."""
    changes: list[tuple[Change, str]] = []
    for event in events:
        if event.mask & IN_Q_OVERFLOW:
            raise WatchLost("the inotify queue overflowed: events were dropped")
        directory = dirs.get(event.wd)
        if directory is None:
            continue  # not a watch of ours
        if event.mask & _SELF_GONE:
            raise WatchLost(f"{directory} was deleted, moved or unmounted")
        if not event.name:
            continue  # the directory's own attributes; its entry in the parent reports what matters
        path = os.path.join(directory, event.name)
        change = change_of(event.mask)
        if watch_filter(change, path):
            changes.append((change, path))
    return changes


class Inotify:
    """One non-blocking, close-on-exec inotify instance; ``close`` drops all its watches."""

    def __init__(self) -> None:
        libc = _libc()
        if libc is None:
            raise InotifyUnavailable(f"no inotify on {sys.platform}")
        fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)  # == IN_NONBLOCK | IN_CLOEXEC on Linux
        if fd < 0:  # out of instances (max_user_instances) or descriptors: inotify is out for now
            raise InotifyUnavailable(f"inotify_init1: {os.strerror(ctypes.get_errno())}")
        self._libc = libc
        self.fd = fd

    def add_watch(self, path: str | os.PathLike[str], mask: int = WATCH_MASK) -> int:
        """Watch ``path``; its watch descriptor (the same one again for the same inode)."""
        wd = self._libc.inotify_add_watch(self.fd, os.fsencode(path), mask)
        if wd < 0:
            err = ctypes.get_errno()
            if err in (errno.ENOSPC, errno.ENOMEM):  # max_user_watches reached
                raise InotifyUnavailable(f"inotify_add_watch: {os.strerror(err)}")
            raise OSError(err, os.strerror(err), os.fspath(path))
        return wd

    def read(self) -> list[InotifyEvent]:
        """Every event queued now (an empty list if none: the descriptor never blocks)."""
        data = b""
        while True:
            try:
                chunk = os.read(self.fd, _READ_SIZE)
            except BlockingIOError:
                break
            if not chunk:
                break
            data += chunk
        return parse_events(data)

    def close(self) -> None:
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)


async def awatch(
    *paths: Path,
    watch_filter: Callable[[Change, str], bool],
    stop_event: asyncio.Event,
    step_ms: int = 10,
    debounce_ms: int = 30,
) -> AsyncGenerator[Changes, None]:
    """Yield batches of filtered changes to the entries of the directories ``paths`` until ``stop_event``.

    The watches are in place once the first ``__anext__`` has run one step, as
    with watchfiles. A batch opens with the first change that passes the
    filter and closes once ``step_ms`` passes without any new event, or
    ``debounce_ms`` after it opened, so a stream of events cannot hold a
    reload back. While nothing happens, nothing runs: the loop only wakes when
    the kernel queues an event or ``stop_event`` is set. The descriptor is
    closed however the generator ends (exhausted, closed, cancelled, raising).
    """
    loop = asyncio.get_running_loop()
    ino = Inotify()
    try:
        dirs = {ino.add_watch(path): os.fspath(path) for path in paths}
        queued: list[InotifyEvent] = []
        failures: list[OSError] = []
        wake = asyncio.Event()

        def on_readable() -> None:
            # Drain the queue now, even while the caller is busy reloading: a level-triggered
            # descriptor left readable would spin the loop, and the kernel's queue stays short.
            try:
                queued.extend(ino.read())
            except OSError as exc:  # not expected; end the watch rather than spin on it
                failures.append(exc)
                loop.remove_reader(ino.fd)
            wake.set()

        def take() -> tuple[bool, list[tuple[Change, str]]]:
            """(whether any event came since the last take, the filtered changes among them)."""
            if failures:
                raise failures[0]
            events = queued[:]
            queued.clear()
            wake.clear()
            return bool(events), changes_of(events, dirs, watch_filter)

        try:
            loop.add_reader(ino.fd, on_readable)
        except NotImplementedError as exc:  # a loop that cannot watch descriptors (Windows' proactor)
            raise InotifyUnavailable(f"{type(loop).__name__} has no add_reader") from exc
        stopper = asyncio.ensure_future(stop_event.wait())
        stopper.add_done_callback(lambda _: wake.set())
        try:
            while not stop_event.is_set():
                _, first = take()
                if not first:
                    await wake.wait()
                    continue
                batch = set(first)
                deadline = loop.time() + debounce_ms / 1000
                while (left := deadline - loop.time()) > 0 and not stop_event.is_set():
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(min(step_ms / 1000, left)):
                            await wake.wait()
                    active, more = take()
                    if not active:
                        break  # a quiet step: the burst is over
                    batch.update(more)
                if stop_event.is_set():
                    return
                yield batch
        finally:
            stopper.cancel()
            loop.remove_reader(ino.fd)
    finally:
        ino.close()
