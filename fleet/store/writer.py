"""The single writer thread of ``fleet.db``: logs, small writes, indexing, retention.

Why a thread with plain ``sqlite3`` rather than ``aiosqlite`` on the hot path:
a flood of 1.8 M lines/s must not cost one await — nor one Python operation —
per line on the supervisor's event loop. The loop only appends whole chunks to a
deque (``enqueue_logs``, O(1) per chunk); this thread takes everything queued,
coalesces small chunks of the same agent/stream into rows of up to 64 KiB,
appends their bytes to the current log segment with one ``pwritev`` and commits
the rows with one ``executemany`` per batch (``segments`` says why the bytes are
not in SQLite). ``sqlite3`` and the write release the GIL, so the loop keeps
running meanwhile.

Every batch is one transaction, committed after its bytes are written, and a
chunk is always wholly inside one row, so a SIGKILL leaves whole chunks only:
no agent's line numbers have a gap.

Work in priority order: (1) queued items — logs and small writes, in order;
(2) retention in small batches. Full-text indexing is not done here: the
``Indexer`` thread does it at low priority (``indexer`` says why).

FTS5's automatic merging is turned off (``automerge=0``): merging while indexing
cost more than the indexing itself — a 4 M-line flood indexed in 12.3 s with it,
5.6 s without. Instead the indexer merges in small idle steps after catching up;
until then a query visits more segments (measured: 6.5 ms instead of 0.4 ms).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import sqlite3
import threading
import time
from array import array
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fleet.records import LogChunk
from fleet.store import readers, segments
from fleet.store.indexer import Indexer
from fleet.store.segments import SegmentWriter

log = logging.getLogger(__name__)

#: Target size of one coalesced row.
ROW_BYTES = 64 * 1024
#: Upper bound of log bytes taken into one transaction. Small enough that the batch being
#: written and the queue filling behind it stay small (the queue pauses the pipes at the
#: store's high-water mark, 8 MiB): with 8 MiB batches a flood held up to twice that, and
#: drained slower (pipes paused longer while one big batch was written). A commit costs
#: ~0.2 ms, so 2 MiB batches cost nothing measurable.
BATCH_BYTES = 2 * 1024 * 1024
#: Checkpoint the WAL once logs have been quiet this long ...
CHECKPOINT_QUIET_S = 0.5
#: ... or, in a flood that never stops, once this many log bytes were written (a
#: checkpoint fsyncs the segments too, so their rows never outlive their bytes).
CHECKPOINT_EVERY_BYTES = 512 * 1024 * 1024
#: What the WAL file is cut back to after a checkpoint (it would otherwise keep its peak size).
WAL_SIZE_LIMIT = 64 * 1024 * 1024
#: Once the disk has been full, the WAL is kept small for the rest of the run: in a flood it
#: holds several times the log bytes written since the last checkpoint, and on a nearly
#: full disk that is what fills it again (then nothing can be checkpointed for want of room).
LOW_SPACE_CHECKPOINT_BYTES = 4 * 1024 * 1024
LOW_SPACE_WAL_LIMIT = 4 * 1024 * 1024
#: Rows deleted per retention transaction.
RETENTION_BATCH_ROWS = 200
#: Back-off between retries of a batch the disk refused (doubling from the first).
RETRY_FIRST_S = 0.05
RETRY_MAX_S = 2.0


def retryable(exc: BaseException) -> bool:
    """Whether ``exc`` is the disk's fault (full, I/O error, permission...), so the batch is retried.

    A log segment write raises ``OSError`` (ENOSPC, EIO, EACCES, EROFS, EDQUOT...),
    SQLite an ``OperationalError`` ("database or disk is full", "disk I/O error",
    "attempt to write a readonly database") or a plain ``DatabaseError``. Anything
    else (an ``IntegrityError``: a bug) is not worth retrying for ever.
    """
    if isinstance(exc, OSError):
        return True
    if not isinstance(exc, sqlite3.OperationalError) and type(exc) is not sqlite3.DatabaseError:
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    return code is None or code & 0xFF in _DISK_CODES


#: SQLite's primary result codes that say the disk (or the file's access) is at fault:
#: PERM, BUSY, LOCKED, NOMEM, READONLY, IOERR, CORRUPT, FULL, CANTOPEN.
_DISK_CODES = frozenset({3, 5, 6, 7, 8, 10, 11, 13, 14})


def _is_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF == 13  # SQLITE_FULL


def describe(exc: BaseException) -> str:
    """One line for a store error, as an operator reads it: "disk full (ENOSPC): <file>"."""
    if isinstance(exc, OSError) and exc.errno is not None:
        name = errno.errorcode.get(exc.errno, str(exc.errno))
        what = {errno.ENOSPC: "disk full", errno.EIO: "I/O error", errno.EACCES: "permission denied",
                errno.EROFS: "read-only file system", errno.EDQUOT: "disk quota exceeded"}.get(
                    exc.errno, exc.strerror or "error")
        return f"{what} ({name})" + (f": {exc.filename}" if exc.filename else "")
    name = getattr(exc, "sqlite_errorname", None)
    code = getattr(exc, "sqlite_errorcode", None)
    what = {13: "disk full", 10: "I/O error", 8: "read-only database", 14: "cannot open the database",
            11: "database damaged", 3: "permission denied"}.get(code & 0xFF if code is not None else -1)
    if what and name:
        return f"{what} ({name}: {exc})"
    return f"{exc} ({name})" if name else f"{type(exc).__name__}: {exc}"


class _Call:
    """A small write (or a barrier) run by the writer inside its transaction."""

    __slots__ = ("fn", "future")

    def __init__(self, fn: Callable[[sqlite3.Connection], Any]) -> None:
        self.fn = fn
        self.future: Future[Any] = Future()


_STOP = object()


@dataclass
class Retention:
    """What to keep: log chunks and events younger than ``days``, logs up to ``mb`` MiB."""

    days: float | None = None
    mb: float | None = None
    interval_s: float = 300.0


@dataclass
class _Row:
    agent: str
    run_id: int
    stream: str
    first_seq: int
    count: int
    ts: float
    ts_end: float
    nbytes: int
    texts: list[bytes | memoryview] = field(default_factory=list)
    marks: list[float] | None = None

    def params(self) -> tuple[Any, ...]:
        text = self.texts  # written to the segment as they are (pwritev): never joined
        marks = array("d", self.marks).tobytes() if self.marks else None
        return (
            self.agent,
            self.run_id,
            self.stream,
            self.first_seq,
            self.count,
            self.ts,
            self.ts_end,
            marks,
            self.nbytes,
            text,
        )


def coalesce(chunks: list[LogChunk]) -> tuple[list[tuple[Any, ...]], dict[str, int]]:
    """Rows for ``chunks`` (in order), and the last seq per agent.

    A row is ``(agent, run_id, stream, first_seq, count, ts, ts_end, marks, nbytes, buffers)``:
    its bytes are the list of chunk buffers, in order.

    Consecutive chunks of one agent instance, run and stream whose numbers follow
    on are joined while the row stays under ``ROW_BYTES`` and within
    ``readers.MAX_ROW_SPAN_S``; a timestamp change inside a row is kept in
    ``marks`` so every line keeps its own read time. Work is per chunk, not per line.
    """
    open_rows: dict[tuple[str, int, str], _Row] = {}
    rows: list[tuple[Any, ...]] = []
    last: dict[str, int] = {}
    for c in chunks:
        if c.count <= 0:
            continue
        text = c.data if c.data[-1:] == b"\n" else bytes(c.data) + b"\n"
        size = len(text)
        key = (c.agent, c.run_id, c.stream)
        end_seq = c.first_seq + c.count - 1
        if last.get(c.agent, 0) < end_seq:
            last[c.agent] = end_seq
        row = open_rows.get(key)
        if (
            row is not None
            and row.first_seq + row.count == c.first_seq
            and row.nbytes + size <= ROW_BYTES
            and 0 <= c.ts - row.ts <= readers.MAX_ROW_SPAN_S
        ):
            if c.ts != row.ts_end:
                if row.marks is None:
                    row.marks = []
                row.marks += (float(row.count), c.ts)
                row.ts_end = c.ts
            row.count += c.count
            row.nbytes += size
            row.texts.append(text)
            continue
        if row is not None:
            rows.append(row.params())
        open_rows[key] = _Row(c.agent, c.run_id, c.stream, c.first_seq, c.count, c.ts, c.ts, size, [text])
    rows.extend(r.params() for r in open_rows.values())
    return rows, last


_INSERT_CHUNK = (
    "INSERT INTO log_chunks (agent, run_id, stream, first_seq, count, ts, ts_end, marks, nbytes, text, seg, off)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, '', ?, ?)"
)
#: What the indexer and retention need to get a row's text.
_TEXT_COLS = "id, text, seg, off, nbytes, count"
_UPSERT_AGENT = (
    "INSERT INTO log_agents (agent, max_seq) VALUES (?, ?)"
    " ON CONFLICT (agent) DO UPDATE SET max_seq = max(max_seq, excluded.max_seq)"
)


class Writer(threading.Thread):
    """Owns the read-write connection; everything that writes goes through its queue.

    ``on_backlog_low`` is called from this thread when the backlog falls below the
    low-water mark after having been above the high-water mark.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        high_water: int,
        low_water: int,
        on_pressure: Callable[[bool], None],
        logs_dir: Path,
    ) -> None:
        super().__init__(name="fleet-store-writer", daemon=True)
        self.conn = conn
        self.logs_dir = logs_dir
        self.segments = SegmentWriter.open(conn, logs_dir)
        # Checkpoints copy every WAL page into the database a second time: do them
        # when logs are quiet (or the WAL grows large), not in the middle of a flood.
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
        self._wal_dirty = False
        self._wal_bytes = 0
        self.high_water = high_water
        self.low_water = low_water
        self._on_pressure = on_pressure
        self.cond = threading.Condition(threading.Lock())
        self.queue: deque[Any] = deque()
        self.backlog_bytes = 0
        self.pressure = False
        self.retention = Retention()
        self._next_retention = time.monotonic() + 5.0
        self._retention_waiters: list[Future[int]] = []
        #: Test seam: called in this thread before each log commit (e.g. to simulate a slow disk).
        self.delay_hook: Callable[[], None] | None = None
        self.last_log_enqueue = 0.0
        self.error: BaseException | None = None
        self.last_error = ""
        #: While log batches fail: since when (wall time), and the error of the last attempt.
        self.failing_since: float | None = None
        self.retries = 0
        #: Called from this thread with the error text when writes start failing, "" when they resume.
        self.on_health: Callable[[str], None] | None = None
        #: Set by ``give_up``: stop retrying, count what is left as unwritten, and end.
        self._give_up = False
        #: Log lines never written because the writer gave up (shutdown while the disk was full).
        self.unwritten = 0
        #: The disk has been full during this run: keep the WAL small (see ``LOW_SPACE_CHECKPOINT_BYTES``).
        self.low_space = False
        # Counters (written by this thread, read anywhere; ints are atomic enough).
        self.lines_enqueued = 0
        self.lines_written = 0
        self.bytes_written = 0
        self.chunks_written = 0
        self.rows_written = 0
        self.dropped = 0
        #: Log bytes committed since start (the indexer's lag is measured against it).
        self.committed_bytes = 0
        #: Seconds the writer waited for the database's write lock: the longest wait, and in all
        #: (only the indexer's short transactions can make it wait).
        self.lock_wait_max_s = 0.0
        self.lock_wait_s = 0.0
        self.max_id = conn.execute("SELECT COALESCE(MAX(id), 0) FROM log_chunks").fetchone()[0]
        #: ``max_id`` as of the last commit (``max_id`` moves inside the transaction): what the indexer may see.
        self.committed_max_id = self.max_id
        conn.execute("INSERT INTO log_fts (log_fts, rank) VALUES ('automerge', 0)")
        conn.execute("INSERT INTO log_fts (log_fts, rank) VALUES ('crisismerge', 2000)")
        path = Path(conn.execute("PRAGMA database_list").fetchone()[2])
        self.indexer = Indexer(self, path, self.logs_dir)

    # ------------------------------------------------------------ producer side

    def enqueue_logs(self, chunks: list[LogChunk], nbytes: int, lines: int) -> bool:
        """Queue chunks; return True when this append raised the backlog over the high-water mark."""
        with self.cond:
            self.queue.append((chunks, nbytes))
            self.last_log_enqueue = time.monotonic()
            self.backlog_bytes += nbytes
            self.lines_enqueued += lines
            self.cond.notify()
            if not self.pressure and self.backlog_bytes > self.high_water:
                self.pressure = True
                return True
        return False

    def submit(self, fn: Callable[[sqlite3.Connection], Any]) -> Future[Any]:
        """Run ``fn(conn)`` in the writer's transaction, after everything queued before it."""
        call = _Call(fn)
        with self.cond:
            if self.error is not None:
                call.future.set_exception(RuntimeError(f"store writer failed: {self.error!r}"))
                return call.future
            self.queue.append(call)
            self.cond.notify()
        return call.future

    def stop(self) -> None:
        with self.cond:
            self.queue.append(_STOP)
            self.cond.notify()

    def give_up(self) -> None:
        """Shutdown while writes keep failing: stop retrying, count the rest as unwritten, end.

        Everything still queued is counted in ``unwritten`` (never silently lost) and
        awaited small writes fail with the error.
        """
        with self.cond:
            self._give_up = True
            self.queue.append(_STOP)
            self.cond.notify()

    def request_retention(self) -> Future[int]:
        """Run a full retention pass soon; the future gets the number of log lines deleted."""
        fut: Future[int] = Future()
        with self.cond:
            self._retention_waiters.append(fut)
            self._next_retention = 0.0
            self.cond.notify()
        return fut

    def request_indexed(self) -> Future[int]:
        """Future resolved (with ``fts_upto``) once every chunk committed so far is indexed."""
        return self.indexer.request_indexed()

    def set_indexing(self, on: bool) -> None:
        self.indexer.set_indexing(on)

    @property
    def fts_upto(self) -> int:
        return self.indexer.fts_upto

    @property
    def indexing(self) -> bool:
        return self.indexer.indexing

    def start(self) -> None:
        super().start()
        self.indexer.start()

    def _quiet_in(self, quiet_s: float) -> float:
        return max(0.0, self.last_log_enqueue + quiet_s - time.monotonic())

    def _checkpoint(self) -> None:
        self.segments.sync()  # rows made durable must not outlive their bytes
        self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        self._wal_dirty = False
        self._wal_bytes = 0

    # ------------------------------------------------------------ thread side

    def run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # pragma: no cover - surfaced through futures and stats
            log.exception("store writer crashed")
            self.error = exc
            self._fail_pending(exc)
        finally:
            if self.indexer.is_alive():
                self.indexer.stop()
                self.indexer.join()
            else:
                self.indexer.conn.close()
            try:
                self.segments.close()
            except OSError:  # pragma: no cover
                log.exception("closing the log segment failed")
            try:
                self.conn.close()
            except sqlite3.Error:  # pragma: no cover
                pass

    def _fail_pending(self, exc: BaseException) -> None:
        with self.cond:
            items = list(self.queue)
            self.queue.clear()
            waiters, self._retention_waiters = self._retention_waiters, []
        self.indexer.fail_waiters(exc)
        for item in items:
            if isinstance(item, _Call) and not item.future.done():
                item.future.set_exception(RuntimeError(f"store writer failed: {exc!r}"))
            elif isinstance(item, tuple):
                self.dropped += sum(c.count for c in item[0])
        for fut in waiters:
            fut.set_exception(RuntimeError(f"store writer failed: {exc!r}"))

    def _loop(self) -> None:
        retention_state: list[Any] | None = None
        since_index = 0
        while True:
            with self.cond:
                while not self.queue:
                    if retention_state is not None:
                        break
                    wait = self._next_retention - time.monotonic()
                    if wait <= 0 and (self.retention.days or self.retention.mb or self._retention_waiters):
                        break
                    if wait <= 0:
                        self._next_retention = time.monotonic() + self.retention.interval_s
                        wait = self.retention.interval_s
                    if self._wal_dirty:
                        quiet_in = self._quiet_in(CHECKPOINT_QUIET_S)
                        if quiet_in <= 0:
                            break
                        wait = min(wait, quiet_in + 0.001)
                    self.cond.wait(wait)
                items: list[Any] = []
                taken = 0
                while self.queue and taken < BATCH_BYTES:
                    item = self.queue.popleft()
                    items.append(item)
                    if isinstance(item, tuple):
                        taken += item[1]
            if items:
                stop = self._write_retrying(items, taken)
                since_index += 1
                if stop:
                    return
                self.indexer.poke()
                # Keep the WAL from growing without bound ...
                self._wal_bytes += taken
                if self._wal_bytes >= (LOW_SPACE_CHECKPOINT_BYTES if self.low_space else CHECKPOINT_EVERY_BYTES):
                    self._background(self._checkpoint)
                # ... and retention from never running under one.
                if since_index % 16 == 0 and (retention_state is not None or self._retention_due()):
                    retention_state = self._background(self._retention_step, retention_state)
                continue
            if retention_state is not None or self._retention_due():
                retention_state = self._background(self._retention_step, retention_state)
            elif self._wal_dirty and self._quiet_in(CHECKPOINT_QUIET_S) <= 0:
                self._background(self._checkpoint)

    def _background(self, step: Callable[..., Any], *args: Any) -> Any:
        """Run one background step; an operational error (disk full...) backs off instead of crashing."""
        try:
            return step(*args)
        except (sqlite3.Error, OSError) as exc:  # maintenance only: whatever the disk says, try later
            self._rollback()
            self.last_error = describe(exc)
            log.warning("store background step failed (%s); backing off", exc)
            with self.cond:
                self.cond.wait(1.0)  # a real back-off, not synchronisation
            return None

    def _retention_due(self) -> bool:
        ret = self.retention
        due = self._next_retention <= time.monotonic()
        return due and bool(ret.days or ret.mb or self._retention_waiters)

    def _write_retrying(self, items: list[Any], taken: int) -> bool:
        """``_write``, retried while the disk refuses it (full, I/O error, permission...).

        The batch stays counted in the backlog meanwhile and pressure is turned on at
        the first failure, so the supervisor keeps its pipes paused: the agents block,
        nothing is lost. Retries back off from ``RETRY_FIRST_S`` to ``RETRY_MAX_S``
        and go on until the cause is gone, or until ``give_up`` (shutdown).
        """
        delay = RETRY_FIRST_S
        while True:
            if self._give_up:
                return self._abandon(items)
            try:
                stop = self._write(items, taken)
            except (sqlite3.Error, OSError) as exc:
                if not retryable(exc):
                    raise
                self._failed(exc, delay)
                self._free_wal()
                with self.cond:
                    if not self._give_up:
                        self.cond.wait(delay)  # a real back-off, not synchronisation (give_up wakes it)
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            if self.failing_since is not None:
                self._recovered()
            return stop

    def _failed(self, exc: BaseException, delay: float) -> None:
        text = describe(exc)
        if not self.low_space and _is_full(exc):
            self.low_space = True
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute(f"PRAGMA journal_size_limit = {LOW_SPACE_WAL_LIMIT}")
        self.retries += 1
        first = self.failing_since is None
        if first or text != self.last_error:
            log.warning("store write failed (%s); retrying with back-off, log pipes paused", text)
        self.last_error = text
        if first:
            self.failing_since = time.time()
            with self.cond:
                flip = not self.pressure
                self.pressure = True
            if flip:
                self._on_pressure(True)
        if first or self.retries % 50 == 0:
            self._tell_health(text)

    def _recovered(self) -> None:
        log.warning("store writes resumed after %.1f s (%s)", time.time() - (self.failing_since or 0), self.last_error)
        self.failing_since = None
        self.last_error = ""
        self.retries = 0
        self._tell_health("")

    def _tell_health(self, text: str) -> None:
        if self.on_health is not None:
            try:
                self.on_health(text)
            except Exception:  # pragma: no cover - a listener bug must not stop the writer
                log.exception("store health listener failed")

    def _abandon(self, items: list[Any]) -> bool:
        """Give up ``items`` and everything queued: count the lines, fail the awaited writes."""
        reason = self.last_error or "store closed"
        with self.cond:
            rest = list(self.queue)
            self.queue.clear()
        lines = 0
        for item in [*items, *rest]:
            if isinstance(item, tuple):
                lines += sum(c.count for c in item[0])
            elif isinstance(item, _Call) and not item.future.done():
                item.future.set_exception(RuntimeError(f"store write abandoned at shutdown: {reason}"))
        self.unwritten += lines
        if lines:
            log.error("store: %d log lines could not be written (%s)", lines, reason)
        return True

    def _free_wal(self) -> None:
        """Between retries: checkpoint and truncate the WAL, which may be what fills the disk.

        In a flood the WAL is checkpointed only every ``CHECKPOINT_EVERY_BYTES`` (or when
        logs go quiet, which paused pipes never let happen while a batch is retried), and
        it can hold several times the log bytes: on a small disk it can be the file that
        filled it. A checkpoint that fails too (no room for the database to grow) is harmless.
        """
        try:
            self.segments.sync()
            busy, _frames, _done = self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except (sqlite3.Error, OSError):
            return
        if not busy:
            self._wal_dirty = False
            self._wal_bytes = 0

    def _rollback(self) -> None:
        if self.conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")

    def shutdown_at_exit(self) -> None:
        """``atexit`` hook: a normal interpreter exit without ``close()`` still commits the queue."""
        if self.is_alive():
            self.stop()
            self.join(timeout=60)

    def _write(self, items: list[Any], taken: int) -> bool:
        """Commit ``items`` in order in one transaction; return True on the stop sentinel."""
        conn = self.conn
        chunks: list[LogChunk] = []
        results: list[tuple[_Call, Any, BaseException | None]] = []
        stop = False
        lines = 0
        mark = self.segments.mark()
        before = (self.max_id, self.chunks_written, self.rows_written, self.committed_bytes, self.indexer.lag_since)
        t0 = time.monotonic()
        conn.execute("BEGIN IMMEDIATE")
        waited = time.monotonic() - t0
        self.lock_wait_s += waited
        self.lock_wait_max_s = max(self.lock_wait_max_s, waited)
        try:
            for item in items:
                if isinstance(item, tuple):
                    chunks.extend(item[0])
                    continue
                if chunks:
                    lines += self._insert_chunks(chunks)
                    chunks = []
                if item is _STOP:
                    stop = True
                    continue
                conn.execute("SAVEPOINT call")
                try:
                    res = item.fn(conn)
                except Exception as exc:
                    if isinstance(exc, sqlite3.Error | OSError) and retryable(exc):
                        raise  # the disk's fault, not the call's: the whole batch is retried
                    conn.execute("ROLLBACK TO call")
                    conn.execute("RELEASE call")
                    results.append((item, None, exc))
                else:
                    conn.execute("RELEASE call")
                    results.append((item, res, None))
            if chunks:
                lines += self._insert_chunks(chunks)
            if self.delay_hook is not None:
                self.delay_hook()
            conn.execute("COMMIT")
        except BaseException:
            self._rollback()
            # Nothing of it committed: the ids it took are free again (the index must not skip them).
            self.max_id, self.chunks_written, self.rows_written, self.committed_bytes, self.indexer.lag_since = before
            with contextlib.suppress(OSError):
                self.segments.undo(mark)  # the retry writes them again (over them, if this failed)
            raise
        self.committed_max_id = self.max_id
        self._wal_dirty = True
        self.lines_written += lines
        self.bytes_written += taken
        for call, res, exc in results:
            if call.future.cancelled():  # the awaiting coroutine went away; the write still landed
                continue
            if exc is not None:
                call.future.set_exception(exc)
            else:
                call.future.set_result(res)
        with self.cond:
            self.backlog_bytes -= taken
            flip = self.pressure and self.backlog_bytes <= self.low_water
            if flip:
                self.pressure = False
        if flip:
            self._on_pressure(False)
        return stop

    def _insert_chunks(self, chunks: list[LogChunk]) -> int:
        if self.indexer.fts_upto >= self.max_id:  # the first rows the index has not reached since it caught up
            self.indexer.lag_since = time.monotonic()
        rows, last = coalesce(chunks)
        places = self.segments.append([r[9] for r in rows])
        self.conn.executemany(_INSERT_CHUNK, [(*r[:9], *p) for r, p in zip(rows, places, strict=True)])
        self.conn.executemany(_UPSERT_AGENT, last.items())
        self.max_id = self.conn.execute("SELECT last_insert_rowid()").fetchone()[0]
        self.chunks_written += len(chunks)
        self.rows_written += len(rows)
        self.committed_bytes += sum(r[8] for r in rows)
        return sum(r[4] for r in rows)

    # ------------------------------------------------------------ retention

    def _retention_step(self, state: list[Any] | None) -> list[Any] | None:
        """One small step of a retention pass; returns the state to continue with, or None when done.

        ``state`` is ``[deleted_so_far, cutoff_ts, cutoff_id]``.
        """
        conn = self.conn
        if state is None:
            ret = self.retention
            cutoff_ts = time.time() - ret.days * 86400 if ret.days else None
            cutoff_id = 0
            if ret.mb:
                keep = int(ret.mb * 1024 * 1024)
                total = 0
                for rid, nbytes in conn.execute("SELECT id, nbytes FROM log_chunks ORDER BY id DESC"):
                    total += nbytes
                    if total > keep:
                        cutoff_id = rid
                        break
            state = [0, cutoff_ts, cutoff_id]
        deleted, cutoff_ts, cutoff_id = state
        rows: list[tuple[int, str, int | None, int, int, int]] = []
        if cutoff_id:
            rows = conn.execute(
                f"SELECT {_TEXT_COLS} FROM log_chunks WHERE id <= ? ORDER BY id LIMIT ?",
                (cutoff_id, RETENTION_BATCH_ROWS),
            ).fetchall()
        if not rows and cutoff_ts is not None:
            rows = conn.execute(
                f"SELECT {_TEXT_COLS} FROM log_chunks WHERE ts_end < ? ORDER BY ts_end LIMIT ?",
                (cutoff_ts, RETENTION_BATCH_ROWS),
            ).fetchall()
        conn.execute("BEGIN IMMEDIATE")
        try:
            if rows:
                # The FTS index takes a row out only given the very text it indexed: a row whose
                # segment is gone keeps its (harmless: the row is gone, so never matched) entries.
                # What is indexed is read inside this transaction: the indexer commits in its own.
                upto = readers.indexed_upto(conn)
                indexed = [
                    (rid, t)
                    for rid, text, seg, off, nbytes, _n in rows
                    if rid <= upto and (t := segments.read_row(self.logs_dir, text, seg, off, nbytes)) is not None
                ]
                if indexed:
                    conn.executemany("INSERT INTO log_fts (log_fts, rowid, text) VALUES ('delete', ?, ?)", indexed)
                conn.executemany("DELETE FROM log_chunks WHERE id = ?", [(r[0],) for r in rows])
            elif cutoff_ts is not None:
                conn.execute("DELETE FROM events WHERE ts < ?", (cutoff_ts,))
            conn.execute("COMMIT")
        except BaseException:
            self._rollback()  # SQLite may have rolled back by itself (SQLITE_FULL): never raise here
            raise
        if rows:
            self._drop_segments()
            self.indexer.merge_soon()  # FTS deletes add tombstone segments
            return [deleted + sum(r[5] for r in rows), cutoff_ts, cutoff_id]
        # Pass complete: give freed pages back to the file system in the background too.
        try:
            conn.execute("PRAGMA incremental_vacuum(2000)")
        except sqlite3.Error:  # pragma: no cover
            pass
        with self.cond:
            self._next_retention = time.monotonic() + self.retention.interval_s
            waiters, self._retention_waiters = self._retention_waiters, []
        for fut in waiters:
            fut.set_result(deleted)
        return None

    def _drop_segments(self) -> None:
        """Delete the segment files no row points into any more."""
        low = self.conn.execute("SELECT MIN(seg) FROM log_chunks WHERE seg IS NOT NULL").fetchone()[0]
        self.segments.drop_before(low if low is not None else self.segments.seg)


def dumps(data: Any) -> str:
    """JSON for a column (compact, unicode kept)."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)
