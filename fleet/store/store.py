"""``Store``: the asyncio face of ``fleet.db`` used by the supervisor.

Writes go to one ``Writer`` thread (see ``writer``): logs are handed over whole
chunks at a time without awaiting anything, small writes (events, usage,
approvals, audit, policy versions) are awaited until committed. Reads run the
shared synchronous queries of ``readers`` on one dedicated reader thread with
its own connection: in WAL mode they never wait for the writer. Plain
``sqlite3`` on our own threads rather than ``aiosqlite`` because the hot path
must not cost an await per write, because small writes ride along in the
writer's batches (measured: an awaited event insert costs 78 µs here vs 294 µs
for aiosqlite execute + commit), and because the same reader code then serves
the CLI with no event loop and no fleet running. A read costs one hop to the
reader thread (~75 µs for ``events(20)`` including building the records,
aiosqlite's hop for the same query ~80 µs: ``python -m bench.store_reads``).

Back-pressure: the queue is bounded by bytes. Above ``high_water_bytes``
``pressure`` turns True and the callbacks registered with ``on_pressure`` run on
the loop, so the supervisor stops reading pipes (the kernel then blocks the
agents) instead of anything being dropped. Only if a caller ignores pressure
until ``hard_limit_bytes`` are lines refused — counted in ``stats()["dropped"]``,
logged, and recorded as a ``fleet`` event, never silently.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from fleet.errors import FleetError
from fleet.records import Event, LogChunk, LogLine, UsageRecord
from fleet.store import damage, readers
from fleet.store import tasks as tasks_sql
from fleet.store.schema import connect, migrate
from fleet.store.segments import logs_dir
from fleet.store.writer import Retention, Writer, dumps

log = logging.getLogger(__name__)

T = TypeVar("T")

DB_NAME = "fleet.db"
APPROVAL_DECISIONS = ("approved", "denied", "expired")


class StoreError(FleetError):
    """A store operation that cannot be done (read-only store, unknown or decided approval...)."""

    code = "store_error"


class Store:
    """The fleet's database. Create with ``await Store.open(path)``; one writer per file."""

    def __init__(
        self,
        path: Path,
        reader: sqlite3.Connection,
        writer: Writer | None,
        loop: asyncio.AbstractEventLoop,
        hard_limit: int,
    ) -> None:
        self.path = path
        self.readonly = writer is None
        self._reader = reader
        self._reads = _ReaderThread(reader, loop)
        self._writer = writer
        self._loop = loop
        self._hard_limit = hard_limit
        self._callbacks: list[Callable[[bool], None]] = []
        self._health_callbacks: list[Callable[[str], None]] = []
        self._delivered = False
        self._dropped = 0
        self._closed = False
        #: Set when the file found at open was damaged and moved aside: the one line saying so.
        self.recovered: str | None = None

    @classmethod
    async def open(
        cls,
        path: Path,
        *,
        readonly: bool = False,
        high_water_bytes: int = 8 * 1024 * 1024,
        low_water_bytes: int | None = None,
        hard_limit_bytes: int | None = None,
        retention_days: float | None = None,
        retention_mb: float | None = None,
    ) -> Store:
        """Open (creating directories and file, and migrating) the database at ``path``.

        ``path`` is the database file; an existing directory means ``<dir>/fleet.db``.
        ``readonly`` opens with a ``mode=ro`` URI and no writer: for the CLI and
        for a console attached to a fleet that runs elsewhere.
        """
        path = Path(path)
        if path.is_dir():
            path = path / DB_NAME
        loop = asyncio.get_running_loop()
        low = low_water_bytes if low_water_bytes is not None else high_water_bytes // 4
        hard = hard_limit_bytes if hard_limit_bytes is not None else max(16 * high_water_bytes, 256 << 20)
        if readonly:
            if not path.exists():
                raise StoreError(f"no fleet database at {path}")
            reader = await asyncio.to_thread(connect, path, readonly=True)
            return cls(path, reader, None, loop, hard)

        store: Store | None = None

        def _on_pressure(_on: bool) -> None:
            if store is not None:
                try:
                    loop.call_soon_threadsafe(store._deliver_pressure)
                except RuntimeError:  # the loop is closed (interpreter exit): nobody to tell
                    pass

        def _open_writer() -> Writer:
            conn = connect(path)
            try:
                migrate(conn)
                return Writer(conn, high_water=high_water_bytes, low_water=low, on_pressure=_on_pressure,
                              logs_dir=logs_dir(path))
            except BaseException:
                conn.close()
                raise

        recovered: str | None = None

        def _move_aside(why: str) -> None:
            nonlocal recovered
            moved, logs_moved = damage.move_aside(path)
            recovered = damage.moved_message(path, why, moved, logs_moved)
            log.warning("%s", recovered)

        # A damaged file is moved aside (kept) and a new store started; any other failure
        # to open it is one line saying what, which file and what to do.
        try:
            why = await asyncio.to_thread(damage.probe, path)
            if why is not None:
                _move_aside(why)
            try:
                writer = await asyncio.to_thread(_open_writer)
            except sqlite3.DatabaseError as exc:
                if recovered is not None or not damage.is_damage(exc):
                    raise
                _move_aside(str(exc))
                writer = await asyncio.to_thread(_open_writer)
        except (sqlite3.Error, OSError) as exc:
            raise damage.StoreUnavailable(damage.explain_unwritable(path, exc)) from exc
        writer.retention = Retention(days=retention_days, mb=retention_mb)

        def _on_health(text: str) -> None:
            if store is not None:
                with contextlib.suppress(RuntimeError):  # the loop is closed: nobody to tell
                    loop.call_soon_threadsafe(store._deliver_health, text)

        writer.on_health = _on_health
        # A diagnostic knob (the benchmark's "indexing off" column): searches then scan every line.
        if os.environ.get("FLEET_SEARCH_INDEX", "").lower() in ("0", "off", "false", "no"):
            writer.set_indexing(False)
        # The reader cannot write even by mistake: one writer per file, by construction.
        reader = await asyncio.to_thread(connect, path, readonly=True)
        store = cls(path, reader, writer, loop, hard)
        store.recovered = recovered
        writer.start()
        atexit.register(writer.shutdown_at_exit)
        return store

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ helpers

    def _w(self) -> Writer:
        if self._writer is None:
            raise StoreError(f"{self.path} is open read-only")
        if self._closed:
            raise StoreError("store is closed")
        return self._writer

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await asyncio.wrap_future(self._w().submit(fn))

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise StoreError("store is closed")
        return await self._reads.submit(fn, *args)

    # ------------------------------------------------------------------ logs

    def append_logs(self, chunks: list[LogChunk]) -> None:
        """Queue chunks for the writer thread. Never blocks; O(1) per chunk.

        Callers should stop reading (``transport.pause_reading``) while
        ``pressure`` is True. Lines are refused only past the hard limit, and then
        counted in ``stats()["dropped"]`` and recorded as an event.
        """
        if not chunks:
            return
        w = self._w()
        if w.error is not None:  # the writer died: count the loss, loudly
            lost = sum(c.count for c in chunks)
            self._dropped += lost
            log.error("store writer is dead (%r): dropped %d lines", w.error, lost)
            return
        nbytes = 0
        lines = 0
        for c in chunks:
            nbytes += len(c.data)
            lines += c.count
        if w.backlog_bytes + nbytes > self._hard_limit:
            self._drop(chunks, lines)
            return
        if w.enqueue_logs(list(chunks), nbytes, lines):
            self._loop.call_soon(self._deliver_pressure)

    def _drop(self, chunks: list[LogChunk], lines: int) -> None:
        self._dropped += lines
        first = chunks[0]
        log.error(
            "store backlog over %d bytes: dropped %d lines (first: %s seq %d)",
            self._hard_limit,
            lines,
            first.agent,
            first.first_seq,
        )
        data = {
            "message": "log lines dropped: store backlog over its hard limit",
            "lines": lines,
            "ranges": [[c.agent, c.stream, c.first_seq, c.count] for c in chunks[:50]],
        }
        ev = Event("fleet", None, data, time.time())
        self._w().submit(lambda conn: _insert_event(conn, ev))

    def _deliver_pressure(self) -> None:
        # Always deliver the *current* state, even if it equals the last one delivered:
        # a reader may have paused itself synchronously on ``pressure`` in between, and
        # must hear "off" even when on→off happened before this callback ran.
        # Callbacks must therefore be idempotent.
        w = self._writer
        if w is None:
            return
        now = w.pressure
        self._delivered = now
        for cb in list(self._callbacks):
            try:
                cb(now)
            except Exception:  # pragma: no cover - a callback bug must not stop the others
                log.exception("store pressure callback failed")

    def _deliver_health(self, text: str) -> None:
        for cb in list(self._health_callbacks):
            try:
                cb(text)
            except Exception:  # pragma: no cover - a callback bug must not stop the others
                log.exception("store health callback failed")

    def on_health(self, cb: Callable[[str], None]) -> None:
        """Call ``cb(error)`` on the event loop when writes start failing (and now and then while
        they fail), ``cb("")`` when they resume."""
        self._health_callbacks.append(cb)

    def health(self) -> dict[str, Any]:
        """``{"ok", "error", "since", "retries", "backlog_bytes", "unwritten", "dropped"}`` for ``status``.

        ``error`` is what the disk said ("disk full (ENOSPC): …"); ``since`` the wall
        time writes started failing. Log pipes stay paused meanwhile (nothing is lost).
        """
        w = self._writer
        if w is None:
            return {"ok": True, "error": None, "since": None, "readonly": True}
        if w.error is not None:
            error: str | None = f"store writer stopped: {w.error!r}"
        else:
            error = w.last_error if w.failing_since is not None else None
        return {
            "ok": error is None,
            "error": error,
            "since": w.failing_since,
            "retries": w.retries,
            "backlog_bytes": w.backlog_bytes,
            "unwritten": w.unwritten,
            "dropped": self._dropped + w.dropped,
            # Full-text index progress, and the log writer's longest wait for the database lock
            # (only the low-priority indexer's short transactions can make it wait).
            "indexed_upto": w.fts_upto,
            "index_lag_bytes": w.indexer.lag_bytes,
            "lock_wait_max_s": round(w.lock_wait_max_s, 4),
        }

    @property
    def pressure(self) -> bool:
        """True while the backlog is above the high-water mark (until it falls below low-water)."""
        return self._writer is not None and self._writer.pressure

    def on_pressure(self, cb: Callable[[bool], None]) -> None:
        """Call ``cb(pressure)`` on the event loop whenever pressure flips."""
        self._callbacks.append(cb)

    async def flush(self) -> None:
        """Resolve once everything enqueued before this call is committed."""
        if self._writer is None:
            return
        await self._write(lambda conn: None)

    async def max_seqs(self) -> dict[str, int]:
        """Last line number per agent instance, including lines enqueued before this call."""
        await self.flush()
        return await self._read(readers.max_seqs)

    async def tail(
        self,
        agent: str | None,
        n: int = 1000,
        before_seq: int | None = None,
        streams: list[str] | None = None,
        since: float | None = None,
        before: tuple[float, str, int] | None = None,
    ) -> list[LogLine]:
        """Last ``n`` committed lines, oldest first; ``agent=None`` merges all agents by
        (ts, agent, seq), before the cursor ``before`` when paging back."""
        return await self._read(readers.tail, agent, n, before_seq, streams, since, before)

    async def search(
        self, text: str, agent: str | None = None, limit: int = 500, since: float | None = None
    ) -> list[LogLine]:
        """Newest ``limit`` committed lines containing ``text`` (case-insensitive), oldest first."""
        return await self._read(readers.search, text, agent, limit, since)

    async def wait_indexed(self) -> int:
        """Resolve once everything committed so far is in the FTS index; return ``indexed_upto``.

        Searches never need this (they scan the unindexed tail); tests and benchmarks do.
        """
        if self._writer is None:
            return await self._read(readers.indexed_upto)
        return await asyncio.wrap_future(self._w().request_indexed())

    def stats(self) -> dict[str, Any]:
        """Counters for the status view and benchmarks; ``dropped`` must stay 0."""
        w = self._writer
        if w is None:
            return {"readonly": True, "dropped": 0}
        return {
            "lines_enqueued": w.lines_enqueued,
            "lines_written": w.lines_written,
            "bytes_written": w.bytes_written,
            "chunks": w.chunks_written,
            "rows": w.rows_written,
            "backlog_bytes": w.backlog_bytes,
            "pressure": w.pressure,
            "indexed_upto": w.fts_upto,
            "max_chunk_id": w.max_id,
            "index_lag_bytes": w.indexer.lag_bytes,
            "indexer_priority": w.indexer.priority,
            "lock_wait_max_s": round(w.lock_wait_max_s, 4),
            "lock_wait_s": round(w.lock_wait_s, 4),
            "dropped": self._dropped + w.dropped,
            "unwritten": w.unwritten,
            "error": repr(w.error) if w.error else (w.last_error or None),
            "failing_since": w.failing_since,
        }

    # ------------------------------------------------------------------ retention

    def set_retention(self, days: float | None = None, mb: float | None = None, interval_s: float = 300.0) -> None:
        """Keep logs (and events) younger than ``days`` and at most ``mb`` MiB of log text.

        Enforced in the background by the writer thread, in small transactions
        between log batches, every ``interval_s``.
        """
        self._w().retention = Retention(days=days, mb=mb, interval_s=interval_s)

    async def apply_retention(self) -> int:
        """Run a retention pass now (in the background thread); return the number of log lines deleted."""
        return await asyncio.wrap_future(self._w().request_retention())

    # ------------------------------------------------------------------ events

    async def add_event(self, ev: Event) -> int:
        """Persist ``ev`` (``ts`` 0 means now); sets and returns its id."""
        if not ev.ts:
            ev.ts = time.time()
        ev.id = await self._write(lambda conn: _insert_event(conn, ev))
        return ev.id

    async def events(
        self,
        n: int = 200,
        kinds: list[str] | None = None,
        agent: str | None = None,
        since: float | None = None,
    ) -> list[Event]:
        """Newest ``n`` events, newest last."""
        return await self._read(readers.events, n, kinds, agent, since)

    # ------------------------------------------------------------------ usage

    async def add_usage(self, rec: UsageRecord) -> None:
        def fn(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO usage (ts, agent, model, tokens_in, tokens_out, cost_usd, latency_s, outcome,"
                " error, policy_version, endpoint) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    rec.ts or time.time(),
                    rec.agent,
                    rec.model,
                    rec.tokens_in,
                    rec.tokens_out,
                    rec.cost_usd,
                    rec.latency_s,
                    rec.outcome,
                    rec.error,
                    rec.policy_version,
                    rec.endpoint,
                ),
            )

        await self._write(fn)

    async def usage_totals(self, since: float | None = None) -> dict[str, dict[str, Any]]:
        """agent -> ``tokens_in``, ``tokens_out``, ``cost_usd``, ``calls``, ``errors`` (error|timeout)."""
        return await self._read(readers.usage_totals, since)

    async def recent_usage(self, agent: str | None = None, n: int = 50) -> list[UsageRecord]:
        return await self._read(readers.recent_usage, agent, n)

    # ------------------------------------------------------------------ approvals

    async def add_approval(
        self, agent: str, action: str, details: dict[str, Any], timeout_s: float, policy_version: int
    ) -> int:
        """Record a pending approval request; return its id."""
        row = (agent, action, dumps(details), time.time(), timeout_s, policy_version)

        def fn(conn: sqlite3.Connection) -> int:
            cur = conn.execute(
                "INSERT INTO approvals (agent, action, details, created, timeout_s, policy_version)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                row,
            )
            return int(cur.lastrowid or 0)

        return await self._write(fn)

    async def decide_approval(self, id: int, decision: str, by: str, reason: str = "") -> None:
        """Decide a pending request. Raises ``StoreError`` if unknown or already decided (first wins)."""
        if decision not in APPROVAL_DECISIONS:
            raise ValueError(f"decision must be one of {APPROVAL_DECISIONS}, not {decision!r}")
        now = time.time()

        def fn(conn: sqlite3.Connection) -> None:
            cur = conn.execute(
                "UPDATE approvals SET status = ?, decided_at = ?, decided_by = ?, reason = ?"
                " WHERE id = ? AND status = 'pending'",
                (decision, now, by, reason, id),
            )
            if cur.rowcount == 1:
                return
            row = conn.execute("SELECT status FROM approvals WHERE id = ?", (id,)).fetchone()
            if row is None:
                raise StoreError(f"no approval request {id}")
            raise StoreError(f"approval request {id} is already {row[0]}")

        await self._write(fn)

    async def approvals(self, pending_only: bool = True) -> list[dict[str, Any]]:
        """Requests, oldest first: id, agent, action, details, status, created, timeout_s,
        decided_at, decided_by, reason, policy_version."""
        return await self._read(readers.approvals, pending_only)

    # ------------------------------------------------------------------ audit

    async def audit(self, action: str, target: str, origin: str, details: dict[str, Any] | None = None) -> None:
        """Record an operator action and where it came from (console, cli, ...)."""
        row = (time.time(), action, target, origin, dumps(details or {}))

        def fn(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO audit (ts, action, target, origin, details) VALUES (?, ?, ?, ?, ?)", row)

        await self._write(fn)

    async def audit_log(self, n: int = 200) -> list[dict[str, Any]]:
        return await self._read(readers.audit_log, n)

    # ------------------------------------------------------------------ policy versions

    async def add_policy_version(self, content_hash: str, content: str, diff: str) -> int:
        """Record an applied policy; return its version number (1, 2, ...; never reused)."""
        row = (content_hash, content, diff, time.time())

        def fn(conn: sqlite3.Connection) -> int:
            cur = conn.execute(
                "INSERT INTO policy_versions (content_hash, content, diff, applied_at) VALUES (?, ?, ?, ?)",
                row,
            )
            return int(cur.lastrowid or 0)

        return await self._write(fn)

    async def latest_policy_version(self) -> int:
        return await self._read(readers.latest_policy_version)

    async def policy_version_hash(self, version: int) -> str | None:
        """Content hash of ``version`` (so a restart with unchanged policies keeps its number)."""
        return await self._read(readers.policy_version_hash, version)

    async def policy_versions(self, n: int = 50) -> list[dict[str, Any]]:
        return await self._read(readers.policy_versions, n)

    # ------------------------------------------------------------------ tasks
    # Transitions are submitted to the writer at the moment they happen and return a
    # future: the queue awaits the ones an agent's reply depends on (add, done) and
    # lets the others ride along — the writer's FIFO keeps them in order either way.

    async def add_tasks(self, rows: list[tuple[str, Any, int, float, str | None]]) -> list[int]:
        """Queue ``(kind, payload, priority, created, added_by)`` tasks; return their ids once committed."""
        encoded = [(k, dumps(p), int(pr), c, by) for k, p, pr, c, by in rows]
        return await self._write(lambda conn: tasks_sql.insert(conn, encoded))

    def task_lease(
        self, task_id: int, agent: str, run_id: int, attempt: int, expires: float, now: float
    ) -> asyncio.Future[None]:
        return asyncio.wrap_future(
            self._w().submit(lambda conn: tasks_sql.lease(conn, task_id, agent, run_id, attempt, expires, now))
        )

    def task_unlease(self, task_id: int, attempt: int, now: float) -> asyncio.Future[None]:
        return asyncio.wrap_future(self._w().submit(lambda conn: tasks_sql.unlease(conn, task_id, attempt, now)))

    def task_finish(
        self, task_id: int, attempt: int, state: str, outcome: str, now: float, result: Any = None,
        error: str | None = None,
    ) -> asyncio.Future[None]:
        """End the current attempt; ``state`` queued (retry), done, failed or dead."""
        res = None if result is None else dumps(result)
        return asyncio.wrap_future(
            self._w().submit(
                lambda conn: tasks_sql.finish(conn, task_id, attempt, state, outcome, now, res, error)
            )
        )

    def task_renew(self, task_ids: list[int], expires: float) -> asyncio.Future[None]:
        ids = list(task_ids)
        return asyncio.wrap_future(self._w().submit(lambda conn: tasks_sql.renew(conn, ids, expires)))

    async def open_tasks(self) -> list[dict[str, Any]]:
        """Queued and leased tasks, oldest first (including writes submitted before this call)."""
        await self.flush()
        return await self._read(tasks_sql.open_tasks)

    async def tasks(self, states: list[str] | None = None, kind: str | None = None, n: int = 200) -> list[dict]:
        """The newest ``n`` tasks, newest last."""
        await self.flush()
        return await self._read(tasks_sql.list_tasks, states, kind, n)

    async def task_counts(self) -> dict[str, int]:
        await self.flush()
        return await self._read(tasks_sql.counts)

    async def task_attempts(self, since: float | None = None, until: float | None = None) -> list[dict[str, Any]]:
        return await self._read(tasks_sql.attempts, since, until)

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` on the reader thread (for read-only modules such as reports)."""
        await self.flush()
        return await self._read(fn, *args)

    # ------------------------------------------------------------------ lifecycle

    async def close(self, grace_s: float = 5.0) -> int:
        """Flush everything enqueued, stop the writer, close connections. Idempotent.

        While writes fail (disk full...), waits ``grace_s`` for the cause to go, then
        gives up: what could not be written is counted, logged and returned (the
        number of log lines), never silently lost. Returns 0 when all was written.
        """
        if self._closed:
            return 0
        w = self._writer
        if w is not None and w.is_alive():
            flushed = asyncio.wrap_future(w.submit(lambda conn: None))
            deadline = self._loop.time() + grace_s
            while not flushed.done():
                await asyncio.wait([flushed], timeout=0.1)
                if not flushed.done() and w.failing_since is not None and self._loop.time() >= deadline:
                    w.give_up()
                    await asyncio.wait([flushed])
            with contextlib.suppress(Exception):
                flushed.result()
        self._closed = True
        # The reader goes first: the last connection to close checkpoints the WAL into
        # the main file and removes it, and only the writer's connection can do that.
        await self._reads.submit(lambda conn: conn.close())
        await asyncio.to_thread(self._reads.stop)
        if w is not None:
            w.stop()
            await asyncio.to_thread(w.join)
            atexit.unregister(w.shutdown_at_exit)
            return w.unwritten + self._dropped + w.dropped
        return 0


class _ReaderThread:
    """One thread running read functions on its own connection, results handed back to the loop.

    The model ``aiosqlite`` implements, but the functions are the synchronous
    readers the CLI runs too (``aiosqlite`` runs only its own statements, so
    every reader would need an async copy). A queue and ``call_soon_threadsafe``
    instead of ``run_in_executor``: ``events(20)`` went from ~93 to ~80 µs a read,
    as fast as ``aiosqlite`` (bench/store_reads.py).
    """

    def __init__(self, conn: sqlite3.Connection, loop: asyncio.AbstractEventLoop) -> None:
        self._conn = conn
        self._loop = loop
        self._queue: queue.SimpleQueue[tuple[asyncio.Future[Any], Callable[..., Any], tuple[Any, ...]] | None] = (
            queue.SimpleQueue()
        )
        self._thread = threading.Thread(target=self._run, name="fleet-store-reader", daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Run ``fn(conn, *args)`` on the reader thread; await the returned future on the loop."""
        fut: asyncio.Future[T] = self._loop.create_future()
        self._queue.put((fut, fn, args))
        return fut

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            fut, fn, args = item
            try:
                result = fn(self._conn, *args)
            except BaseException as exc:
                self._hand_back(fut, None, exc)
            else:
                self._hand_back(fut, result, None)

    def _hand_back(self, fut: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
        try:
            self._loop.call_soon_threadsafe(_settle, fut, result, exc)
        except RuntimeError:  # the loop is closed: nobody waits any more
            pass

    def stop(self) -> None:
        """Let the queued reads finish, then end the thread (blocking: call it off the loop)."""
        self._queue.put(None)
        self._thread.join()


def _settle(fut: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    if fut.done():  # the reader went away (cancelled)
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(result)


def _insert_event(conn: sqlite3.Connection, ev: Event) -> int:
    cur = conn.execute(
        "INSERT INTO events (ts, kind, agent, data) VALUES (?, ?, ?, ?)",
        (ev.ts or time.time(), ev.kind, ev.agent, dumps(ev.data)),
    )
    return int(cur.lastrowid or 0)
