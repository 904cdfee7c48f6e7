"""The full-text indexer: a thread of its own, at idle priority, behind the log writer.

Why not in the writer thread: indexing a 4 M-line flood takes a few CPU-seconds,
and at the writer's priority those seconds are taken from the agents — two
CPU-bound agents next to a flood lost that much progress. Here the indexer
runs at ``nice 19``, and before each batch it asks whether every CPU is wanted
by other runnable tasks (``cpubusy``): then it waits (50 ms, doubling to 1 s)
and takes nothing an agent wanted. The nice value alone did not do that: with
autogroups it weighs only against the supervisor's own threads. It also yields
while logs flow (it starts a batch only once logs have been quiet
``FTS_QUIET_S``). A search meanwhile scans the unindexed tail, so nothing is
unfindable while it waits; once the tail is too big or too old, or someone
waits for the index, it indexes whatever the load.

Priority inversion: the index lives in ``fleet.db`` with the logs, so an indexer
transaction holds the database's write lock, and a starved low-priority thread
holding it stalls the log writer. Its transactions are therefore small
(``FTS_BATCH_BYTES``, ~1 ms of work) and start only when logs are quiet and a
CPU is free, and it is not ``SCHED_IDLE``: there (a weight of 3, and no minimum
share) the writer waited up to 4.8 s for the lock behind two busy agents. The
writer's waits are measured (``lock_wait_max_s`` in the store's stats) so a
stall shows rather than hides.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING

from fleet.store import readers, segments
from fleet.store.cpubusy import CpuBusy

if TYPE_CHECKING:
    from fleet.store.writer import Writer

log = logging.getLogger(__name__)

#: Text indexed per FTS transaction: small, so the write lock is held for ~1 ms of CPU at a
#: time (indexing costs ~0.4 CPU-s per 97 MB here; with 1 MiB batches, starved behind two busy
#: agents, the log writer waited up to 240 ms for the lock).
FTS_BATCH_BYTES = 256 * 1024
#: Index only once logs have been quiet this long: indexing mid-flood would take
#: CPU from ingestion (a search meanwhile scans the unindexed tail instead).
FTS_QUIET_S = 0.2
#: Logs that never go quiet are indexed meanwhile too, once the unindexed tail is
#: this big (a search scans it: ~0.8 s for 512 MiB here) ...
FTS_MAX_LAG_BYTES = 512 * 1024 * 1024
#: ... or has waited this long (a fleet that chats all the time but never floods).
FTS_MAX_LAG_S = 30.0
#: Pages of FTS segment merging per idle step (a few ms here).
FTS_MERGE_PAGES = 16
#: While every CPU is wanted by others, look again after this long, doubling up to the max.
YIELD_FIRST_S = 0.05
YIELD_MAX_S = 1.0


def lower_priority() -> str:
    """Put the calling thread at the lowest priority of its policy: ``"nice 19"``, or ``"normal"`` if refused."""
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, 19)
        return "nice 19"
    except (AttributeError, OSError):
        return "normal"


class Indexer(threading.Thread):
    """Fills ``log_fts`` from the rows the writer committed, with a connection of its own."""

    def __init__(self, writer: Writer, path: Path, logs_dir: Path) -> None:
        super().__init__(name="fleet-store-indexer", daemon=True)
        from fleet.store.schema import connect

        self.writer = writer
        self.logs_dir = logs_dir
        self.conn = connect(path)
        self.conn.execute("PRAGMA wal_autocheckpoint = 0")  # the writer checkpoints, when logs are quiet
        # FTS5 appends new segments and merges a few pages at a time: a small page cache
        # does (the default 32 MB would be filled with index pages after a flood, in RSS).
        self.conn.execute("PRAGMA cache_size = -4000")
        self.cond = threading.Condition(threading.Lock())
        #: False holds the indexer (a test seam, and the bench's "indexing off"); searches scan the tail.
        self.indexing = True
        self.fts_upto = readers.indexed_upto(self.conn)
        #: Log bytes indexed since start, minus what was unindexed at start: lag = writer's committed - this.
        self.indexed_bytes = -self._lag_bytes()
        #: When the oldest row not indexed yet was committed (monotonic).
        self.lag_since = time.monotonic()
        self.priority = "normal"
        self.batches = 0
        self._merge_pending = True
        self._waiters: list[Future[int]] = []
        self._stopping = False
        #: Asked before each batch: are the CPUs all wanted by others (agents)? Then wait.
        self.cpu = CpuBusy()
        self._yield_s = YIELD_FIRST_S
        #: Batches put off because the CPUs were busy (in the store's stats).
        self.yields = 0

    # ------------------------------------------------------------ other threads

    def poke(self) -> None:
        """New rows were committed (or a waiter arrived): look again."""
        with self.cond:
            self.cond.notify()

    def stop(self) -> None:
        with self.cond:
            self._stopping = True
            self.cond.notify()

    def set_indexing(self, on: bool) -> None:
        with self.cond:
            self.indexing = on
            self.cond.notify()

    def request_indexed(self) -> Future[int]:
        """Future resolved (with ``fts_upto``) once every chunk committed so far is indexed."""
        fut: Future[int] = Future()
        with self.cond:
            self._waiters.append(fut)
            self.cond.notify()
        return fut

    def merge_soon(self) -> None:
        """Segments were added (e.g. retention's deletes): merge them when logs are quiet."""
        with self.cond:
            self._merge_pending = True
            self.cond.notify()

    def fail_waiters(self, exc: BaseException) -> None:
        with self.cond:
            waiters, self._waiters = self._waiters, []
        for fut in waiters:
            fut.set_exception(RuntimeError(f"store writer failed: {exc!r}"))

    @property
    def lag_bytes(self) -> int:
        return max(0, self.writer.committed_bytes - self.indexed_bytes)

    # ------------------------------------------------------------ decisions

    def _behind(self) -> bool:
        return self.fts_upto < self.writer.committed_max_id

    def _quiet_in(self) -> float:
        """Seconds until logs have been quiet long enough to work (0 when they have)."""
        return max(0.0, self.writer.last_log_enqueue + FTS_QUIET_S - time.monotonic())

    def _overdue(self) -> bool:
        """The unindexed tail is too big or too old to wait for quiet logs any longer."""
        return self.lag_bytes > FTS_MAX_LAG_BYTES or time.monotonic() - self.lag_since > FTS_MAX_LAG_S

    def _next(self) -> tuple[str, float]:
        """What to do now (``index``, ``merge``, ``resolve``, ``stop``) or ``wait`` and for how long."""
        if self._stopping:
            return "stop", 0.0
        behind = self.indexing and self._behind()
        if self._waiters and not self._behind():
            return "resolve", 0.0
        quiet_in = self._quiet_in()
        if behind and (quiet_in <= 0 or self._waiters or self._overdue()):
            return "index", 0.0
        if self._merge_pending and self.indexing and not behind and quiet_in <= 0:
            return "merge", 0.0
        if behind or (self._merge_pending and self.indexing):
            # Logs are flowing: look again once they may have gone quiet (or the tail is overdue).
            return "wait", min(max(quiet_in, 0.05), FTS_MAX_LAG_S) + 0.001
        return "wait", -1.0  # nothing to do until poked

    def _should_yield(self) -> bool:
        """Every CPU is wanted by another task, and nobody waits for the index nor is it overdue."""
        with self.cond:
            forced = bool(self._waiters) or self._stopping or self._overdue()
        return not forced and self.cpu.busy()

    # ------------------------------------------------------------ thread

    def run(self) -> None:
        self.priority = lower_priority()
        try:
            while True:
                with self.cond:
                    while True:
                        what, wait = self._next()
                        if what != "wait":
                            break
                        self.cond.wait(wait if wait >= 0 else None)
                if what == "stop":
                    return
                if what == "resolve":
                    self._resolve_waiters()
                    continue
                if self._should_yield():
                    with self.cond:
                        self.cond.wait(self._yield_s)  # the CPUs are wanted: look again later
                    self._yield_s = min(self._yield_s * 2, YIELD_MAX_S)
                    self.yields += 1
                    continue
                self._yield_s = YIELD_FIRST_S
                try:
                    self._index_batch() if what == "index" else self._merge_step()
                except sqlite3.OperationalError as exc:  # disk full, busy...: back off, never crash
                    if self.conn.in_transaction:
                        self.conn.execute("ROLLBACK")
                    log.warning("full-text indexing failed (%s); backing off", exc)
                    with self.cond:
                        self.cond.wait(1.0)  # a real back-off, not synchronisation
                if not self._behind():
                    self._resolve_waiters()
        finally:
            try:
                self.conn.close()
            except sqlite3.Error:  # pragma: no cover
                pass

    def _resolve_waiters(self) -> None:
        with self.cond:
            if self._behind():
                return
            waiters, self._waiters = self._waiters, []
        for fut in waiters:
            fut.set_result(self.fts_upto)

    # ------------------------------------------------------------ work

    def _lag_bytes(self) -> int:
        row = self.conn.execute("SELECT COALESCE(SUM(nbytes), 0) FROM log_chunks WHERE id > ?", (self.fts_upto,))
        return int(row.fetchone()[0])

    def _index_batch(self) -> None:
        """Index the next ~``FTS_BATCH_BYTES`` of unindexed chunks in one short transaction.

        Their text is read from the segments before the transaction; inside it, rows
        that retention deleted meanwhile are left out.
        """
        conn = self.conn
        start = self.fts_upto
        upto = start
        total = 0
        for rid, nbytes in conn.execute(
            "SELECT id, nbytes FROM log_chunks WHERE id > ? ORDER BY id LIMIT 4096", (start,)
        ):
            upto = rid
            total += nbytes
            if total >= FTS_BATCH_BYTES:
                break
        if upto == start:  # nothing left above ``start``: retention deleted it; skip to the last commit
            upto = self.writer.committed_max_id
        rows = conn.execute(
            "SELECT id, text, seg, off, nbytes, count FROM log_chunks WHERE id > ? AND id <= ?", (start, upto)
        ).fetchall()
        texts = [(r[0], segments.row_text(self.logs_dir, *r[1:])) for r in rows]
        conn.execute("BEGIN IMMEDIATE")
        try:
            live = {r[0] for r in conn.execute("SELECT id FROM log_chunks WHERE id > ? AND id <= ?", (start, upto))}
            conn.executemany("INSERT INTO log_fts (rowid, text) VALUES (?, ?)", [t for t in texts if t[0] in live])
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('fts_upto', ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (upto,),
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self.fts_upto = upto
        self.indexed_bytes += total
        self.batches += 1
        self._merge_pending = True
        if not self._behind():
            self.lag_since = time.monotonic()

    def _merge_step(self) -> None:
        """Merge a few pages of FTS segments; clear ``_merge_pending`` when nothing is left."""
        conn = self.conn
        before = conn.total_changes
        conn.execute("INSERT INTO log_fts (log_fts, rank) VALUES ('merge', ?)", (FTS_MERGE_PAGES,))
        if conn.total_changes - before < 2:  # SQLite's documented "no more work" test
            self._merge_pending = False
            conn.execute("PRAGMA incremental_vacuum(4096)")  # hand freed pages back to the file system
