"""Log text on disk: append-only segment files beside ``fleet.db``, indexed by its rows.

Why the bytes are not in SQLite: a flood of 400 MB went through SQLite's page
cache, overflow pages and checksummed WAL frames and cost the writer thread
~0.7 CPU-s (perf: SQLite, copies, per-page ``pwrite``); appending the same
bytes to a file costs ~0.2 s, what supervisord pays to write its log files.
The database keeps everything else about a chunk row — agent, run, stream,
line numbers, times and where its bytes are (``seg``, ``off``, ``nbytes``) —
so history, the FTS index and retention work on rows as before.

Crash safety comes from the order of writes: a batch's bytes are written
before the transaction that adds its rows commits. After a SIGKILL the
database never points past what the files hold, and whatever a file holds past
its last committed row is cut off when the writer opens it again
(``SegmentWriter.open``). At a WAL checkpoint the segment is fsynced first, so
a checkpointed row never outlives its bytes across a power cut either.

Files are ``<state_dir>/logs/<seg>.log`` (0600, in a 0700 directory), rolled
at ``SEGMENT_BYTES`` between batches and deleted once retention removed their
last row. Readers open them read-only with ``pread``: the CLI reads last
night's logs with no fleet running. A missing or short file (deleted by hand,
a power cut before write-back) is reported in the lines themselves, never
raised: the rest of the history stays readable.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

#: A segment is rolled once it holds this much (checked between batches).
SEGMENT_BYTES = 64 * 1024 * 1024
LOGS_DIR = "logs"
#: Most buffers one ``pwritev`` takes (Linux's IOV_MAX).
_IOV_MAX = 1024
#: Most bytes one ``pwritev`` writes. Why so few: on Linux 6.18 / ext4 in a VM, calls of
#: 2 MiB and more now and then cost 10-40x the kernel time of the same bytes written in
#: small calls (all of it in ``copy_folio_from_iter_atomic``: the page cache takes big calls
#: in large folios, and touching those is what is slow), and calls of 1 MiB did too in a
#: flood. With 8 MiB batches that was 1-2 CPU-s of the writer thread in a 400 MB flood,
#: against 0.15 s in 64 KiB calls (``python -m bench.segment_writes``; the syscalls are few).
WRITE_BYTES = 64 * 1024
#: Open read-only segment files kept by ``SegmentReader``.
_READ_FDS = 32


def _pwritev(fd: int, buffers: list[bytes | memoryview], offset: int) -> int:
    if hasattr(os, "pwritev"):
        return os.pwritev(fd, buffers, offset)
    return os.pwrite(fd, b"".join(bytes(b) for b in buffers), offset)  # pragma: no cover - no pwritev


def _write_groups(datas: list[bytes | memoryview]) -> Iterator[tuple[list[bytes | memoryview], int]]:
    """``datas`` in consecutive groups of at most ``_IOV_MAX`` buffers and about ``WRITE_BYTES``.

    A buffer larger than ``WRITE_BYTES`` is cut into views of that size.
    """
    group: list[bytes | memoryview] = []
    size = 0
    for piece in _pieces(datas):
        n = len(piece)
        if group and (size + n > WRITE_BYTES or len(group) == _IOV_MAX):
            yield group, size
            group, size = [], 0
        group.append(piece)
        size += n
    if group:
        yield group, size


def _pieces(datas: list[bytes | memoryview]) -> Iterator[bytes | memoryview]:
    """Each buffer, or views of ``WRITE_BYTES`` of one larger than that."""
    for data in datas:
        if len(data) <= WRITE_BYTES:
            yield data
        else:
            view = memoryview(data)
            for pos in range(0, len(data), WRITE_BYTES):
                yield view[pos : pos + WRITE_BYTES]


def logs_dir(db_path: Path) -> Path:
    """Where the segments of the database at ``db_path`` live."""
    return Path(db_path).parent / LOGS_DIR


def segment_path(directory: Path, seg: int) -> Path:
    return directory / f"{seg:08d}.log"


def segment_numbers(directory: Path) -> list[int]:
    """Numbers of the segment files present, ascending."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    return sorted(int(n[:-4]) for n in names if n.endswith(".log") and n[:-4].isdigit())


def missing_text(seg: int, count: int) -> str:
    """What a reader shows for ``count`` lines whose bytes are gone."""
    return f"[log text missing: segment {seg:08d} is gone or short]\n" * count


class SegmentWriter:
    """The writer thread's end: appends row bytes to the current segment.

    Used by one thread only. ``mark``/``undo`` take back a batch whose
    transaction failed, so its retry does not leave the bytes twice.
    """

    def __init__(self, directory: Path, seg: int, size: int) -> None:
        self.directory = directory
        self.seg = seg
        self.size = size
        self._fd = os.open(segment_path(directory, seg), os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
        os.ftruncate(self._fd, size)
        self.bytes_since_sync = 0
        #: Rolled segments not fsynced yet: done at the next ``sync`` (a checkpoint), not at the
        #: roll — an fsync of 64 MiB in the middle of a flood would stall the writer for it.
        self._unsynced: list[int] = []

    @classmethod
    def open(cls, conn: sqlite3.Connection, directory: Path) -> SegmentWriter:
        """Continue after the last committed row; cut off what a crash left beyond it."""
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            os.chmod(directory, 0o700)
        seg, end = conn.execute(
            "SELECT seg, MAX(off + nbytes) FROM log_chunks WHERE seg = (SELECT MAX(seg) FROM log_chunks)"
        ).fetchone()
        present = segment_numbers(directory)
        last = seg or 0
        for n in present:  # created, then the fleet died before a row of it committed
            if n > last:
                with contextlib.suppress(OSError):
                    os.unlink(segment_path(directory, n))
        if seg is None:
            return cls(directory, max([0, *present]) + 1, 0)
        path = segment_path(directory, seg)
        try:
            on_disk = path.stat().st_size
        except FileNotFoundError:
            on_disk = -1
        if on_disk < end:
            # Rows point past the file (lost at a power cut, or removed by hand): never write
            # into that hole; go on in a new segment and let readers report what is missing.
            log.warning("log segment %s holds %d of %d committed bytes; starting a new one", path, on_disk, end)
            return cls(directory, seg + 1, 0)
        if on_disk > end:
            log.info("log segment %s: cutting %d uncommitted bytes left by a crash", path, on_disk - end)
        return cls(directory, seg, end)

    def append(self, rows: list[list[bytes | memoryview]]) -> list[tuple[int, int]]:
        """Write the rows' buffers one after the other; return ``(seg, off)`` of each row."""
        if self.size >= SEGMENT_BYTES:
            self._roll()
        places = []
        off = self.size
        datas: list[bytes | memoryview] = []
        for buffers in rows:
            places.append((self.seg, off))
            for b in buffers:
                off += len(b)
            datas.extend(buffers)
        pos = self.size
        for group, want in _write_groups(datas):
            done = _pwritev(self._fd, group, pos)
            if done < want:  # a short write (a signal, a full disk): write the rest plainly
                rest = b"".join(bytes(b) for b in group)[done:]
                while rest:
                    n = os.pwrite(self._fd, rest, pos + done)
                    done += n
                    rest = rest[n:]
            pos += want
        self.bytes_since_sync += pos - self.size
        self.size = pos
        return places

    def mark(self) -> tuple[int, int]:
        return self.seg, self.size

    def undo(self, mark: tuple[int, int]) -> None:
        """Forget what was appended since ``mark`` (its rows did not commit)."""
        seg, size = mark
        if seg == self.seg and size < self.size:
            os.ftruncate(self._fd, size)
            self.size = size

    def sync(self) -> None:
        """Make what was written durable (before a checkpoint makes its rows durable)."""
        while self._unsynced:
            fd = self._unsynced.pop()
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        if self.bytes_since_sync:
            os.fsync(self._fd)
            self.bytes_since_sync = 0

    def _roll(self) -> None:
        # The new file first: if it cannot be made (disk full, EMFILE), nothing changes
        # and the batch is retried into the current segment's numbering.
        fd = os.open(segment_path(self.directory, self.seg + 1), os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.ftruncate(fd, 0)
        except OSError:
            os.close(fd)
            raise
        if self.bytes_since_sync:
            self._unsynced.append(self._fd)
        else:
            os.close(self._fd)
        self.bytes_since_sync = 0
        self.seg += 1
        self.size = 0
        self._fd = fd

    def drop_before(self, seg: int) -> int:
        """Delete every segment numbered below ``seg`` (never the current one); return how many."""
        gone = 0
        for n in segment_numbers(self.directory):
            if n >= min(seg, self.seg):
                break
            with contextlib.suppress(FileNotFoundError):
                os.unlink(segment_path(self.directory, n))
                gone += 1
        READER.forget(self.directory, seg)
        return gone

    def close(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                self.sync()
            for fd in self._unsynced:
                os.close(fd)
            self._unsynced = []
            os.close(self._fd)
            self._fd = -1


class SegmentReader:
    """``pread`` of row bytes, with a few segment files kept open; safe across threads.

    The lock is held around the read itself: a file descriptor closed by one
    thread while another reads it could meanwhile name a different file.
    """

    def __init__(self, max_open: int = _READ_FDS) -> None:
        self._lock = threading.Lock()
        self._fds: OrderedDict[tuple[str, int], int] = OrderedDict()
        self._max = max_open

    def read(self, directory: Path | str, seg: int, off: int, nbytes: int) -> bytes | None:
        """The bytes of one row, or ``None`` if its file is missing or shorter than the row."""
        key = (str(directory), seg)
        with self._lock:
            fd = self._fds.get(key)
            if fd is None:
                try:
                    fd = os.open(segment_path(Path(directory), seg), os.O_RDONLY | os.O_CLOEXEC)
                except OSError:
                    return None
                self._fds[key] = fd
                while len(self._fds) > self._max:
                    os.close(self._fds.popitem(last=False)[1])
            else:
                self._fds.move_to_end(key)
            try:
                data = os.pread(fd, nbytes, off)
            except OSError:
                return None
        return data if len(data) == nbytes else None

    def forget(self, directory: Path | str, below: int) -> None:
        """Close the files of segments numbered below ``below`` (deleted by retention)."""
        with self._lock:
            for key in [k for k in self._fds if k[0] == str(directory) and k[1] < below]:
                os.close(self._fds.pop(key))


#: One reader for the process: the store's reader thread, the writer's indexer, the CLI.
READER = SegmentReader()


def db_logs_dir(conn: sqlite3.Connection) -> Path | None:
    """The segment directory of ``conn``'s main database (``None`` in memory)."""
    for _seq, name, file in conn.execute("PRAGMA database_list"):
        if name == "main":
            return logs_dir(Path(file)) if file else None
    return None


def read_row(directory: Path | None, text: str, seg: int | None, off: int, nbytes: int) -> str | None:
    """The text of a chunk row — inline (written before segments existed) or from its
    segment — or ``None`` if its bytes are gone."""
    if seg is None:
        return text
    data = READER.read(directory, seg, off, nbytes) if directory is not None else None
    return None if data is None else data.decode("utf-8", "replace")


def row_text(directory: Path | None, text: str, seg: int | None, off: int, nbytes: int, count: int) -> str:
    """``read_row``, with a line saying so for each of the ``count`` lines whose bytes are gone."""
    got = read_row(directory, text, seg, off, nbytes)
    return missing_text(seg or 0, count) if got is None else got
