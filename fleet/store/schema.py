"""Schema of ``fleet.db`` and the migrations that bring any older file up to date.

The version lives in ``PRAGMA user_version``; ``MIGRATIONS[i]`` turns version
``i`` into ``i + 1`` and runs in one transaction with the version bump, so a
crash mid-migration leaves the previous version intact. Never edit a shipped
migration: append a new one.

Logs are stored as *chunks* (``log_chunks``): one row holds consecutive lines of
one agent instance and stream, ``first_seq`` .. ``first_seq + count - 1``. One row
per line caps at ~300 k rows/s here; rows of ~64 KiB reach millions of lines/s.
Since version 4 a row's bytes live in a segment file (``segments``), not in the
row. ``log_fts`` is an FTS5 index over the chunk text, filled behind the writer
(``meta.fts_upto`` is the highest indexed chunk id) with text the writer reads
from the segments: it is declared external-content over ``log_chunks`` only so
that files of version 1-3 keep their index; nothing reads its content column. ``detail=none``
because a search only needs "which chunks contain these tokens" — the matching
lines are found by scanning those chunks — and it indexes ~2.5x faster than the
default ``detail=full`` (measured: 2.6 M vs 1.1 M lines/s).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

#: Version 1: logs, events, usage, approvals, audit, policy versions.
_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE log_chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: ids above meta.fts_upto are unindexed
    agent TEXT NOT NULL,
    run_id INTEGER NOT NULL,
    stream TEXT NOT NULL,
    first_seq INTEGER NOT NULL,
    count INTEGER NOT NULL,
    ts REAL NOT NULL,          -- time of the first line
    ts_end REAL NOT NULL,      -- time of the last line
    marks BLOB,                -- NULL, or float64 pairs (line index, ts) where ts changes
    nbytes INTEGER NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX log_chunks_agent_seq ON log_chunks (agent, first_seq);
CREATE INDEX log_chunks_ts_end ON log_chunks (ts_end);
CREATE VIRTUAL TABLE log_fts USING fts5 (
    text, content='log_chunks', content_rowid='id', detail=none, tokenize='unicode61'
);
CREATE TABLE log_agents (agent TEXT PRIMARY KEY, max_seq INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    kind TEXT NOT NULL,
    agent TEXT,
    data TEXT NOT NULL
);
CREATE INDEX events_ts ON events (ts);
CREATE TABLE usage (
    id INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    agent TEXT NOT NULL,
    model TEXT NOT NULL,
    tokens_in INTEGER NOT NULL,
    tokens_out INTEGER NOT NULL,
    cost_usd REAL NOT NULL,
    latency_s REAL NOT NULL,
    outcome TEXT NOT NULL,
    error TEXT NOT NULL DEFAULT '',
    policy_version INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX usage_ts ON usage (ts);
CREATE INDEX usage_agent ON usage (agent, id);
CREATE TABLE approvals (
    id INTEGER PRIMARY KEY,
    agent TEXT NOT NULL,
    action TEXT NOT NULL,
    details TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'approved', 'denied', 'expired')),
    created REAL NOT NULL,
    timeout_s REAL NOT NULL,
    policy_version INTEGER NOT NULL,
    decided_at REAL,
    decided_by TEXT,
    reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX approvals_status ON approvals (status);
CREATE TABLE audit (
    id INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    origin TEXT NOT NULL,
    details TEXT NOT NULL
);
CREATE TABLE policy_versions (
    version INTEGER PRIMARY KEY AUTOINCREMENT,
    content_hash TEXT NOT NULL,
    content TEXT NOT NULL,
    diff TEXT NOT NULL,
    applied_at REAL NOT NULL
);
"""

#: Version 2: the task queue (its logic lives elsewhere; the store keeps the table).
_V2 = """
CREATE TABLE tasks (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL DEFAULT '{}',
    priority INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'queued'
        CHECK (state IN ('queued', 'leased', 'done', 'failed', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_expires REAL,
    result TEXT,
    error TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX tasks_ready ON tasks (state, priority DESC, id);
"""

#: Version 3: what the queue needs to recover and to measure outcomes. ``run_id`` and
#: ``leased_at`` identify the holder's process run and start the latency clock;
#: ``task_attempts`` keeps one row per lease (who, when, how it ended), so per-agent
#: success rates and lease→done latencies are kept over time, not just the last holder.
_V3 = """
ALTER TABLE tasks ADD COLUMN run_id INTEGER;
ALTER TABLE tasks ADD COLUMN leased_at REAL;
ALTER TABLE tasks ADD COLUMN finished_at REAL;
ALTER TABLE tasks ADD COLUMN added_by TEXT;
CREATE INDEX tasks_finished ON tasks (finished_at);
CREATE TABLE task_attempts (
    task_id INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    agent TEXT NOT NULL,
    run_id INTEGER NOT NULL,
    leased_at REAL NOT NULL,
    ended_at REAL,             -- NULL while the lease is held
    outcome TEXT,              -- done | failed | lost (the holder died or was stopped)
    error TEXT,
    PRIMARY KEY (task_id, attempt)
) WITHOUT ROWID;
CREATE INDEX task_attempts_ended ON task_attempts (ended_at);
"""

#: Version 4: log text moves out of the database into segment files (see ``segments``).
#: A row written from now on has ``text = ''`` and its bytes at ``seg``/``off``/``nbytes``;
#: rows written before keep their text inline (``seg`` NULL) and read as they did.
_V4 = """
ALTER TABLE log_chunks ADD COLUMN seg INTEGER;
ALTER TABLE log_chunks ADD COLUMN off INTEGER;
"""

#: Version 5: which API a call came through (``sdk``, ``openai.chat``, ``anthropic.messages`` ...):
#: agents written with their own clients reach the gateway over HTTP (issue 16).
_V5 = """
ALTER TABLE usage ADD COLUMN endpoint TEXT NOT NULL DEFAULT 'sdk';
"""

MIGRATIONS: tuple[str, ...] = (_V1, _V2, _V3, _V4, _V5)
SCHEMA_VERSION = len(MIGRATIONS)


class SchemaTooNew(RuntimeError):
    """The file was written by a newer fleet; refuse rather than corrupt it."""


def _split(script: str) -> list[str]:
    """Split a migration into statements (``executescript`` would commit on its own)."""
    out: list[str] = []
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    if buf.strip():
        out.append(buf.strip())
    return out


def migrate(conn: sqlite3.Connection) -> int:
    """Bring ``conn``'s database to ``SCHEMA_VERSION``; return the version found.

    ``conn`` must be in autocommit mode (``isolation_level=None``).
    """
    found = conn.execute("PRAGMA user_version").fetchone()[0]
    if found > SCHEMA_VERSION:
        raise SchemaTooNew(f"database schema version {found} is newer than this fleet ({SCHEMA_VERSION})")
    for version in range(found, SCHEMA_VERSION):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for stmt in _split(MIGRATIONS[version]):
                conn.execute(stmt)
            conn.execute(f"PRAGMA user_version = {version + 1}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    return found


#: Page size of a new database. A flood writes ~400 MB of 64-256 KiB rows: with
#: 16 KiB pages SQLite handles (and writes to the WAL) a quarter of the pages it
#: would with 4 KiB, which cut the writer thread's CPU by ~25 % (~0.96 -> ~0.72 s
#: for 4 M lines, ``python -m bench --only flood``). Small commits (an event, a
#: usage row) write a few 16 KiB pages instead of 4 KiB ones. An existing database
#: keeps the page size it was created with.
PAGE_SIZE = 16384


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """Open ``path`` with the fleet's pragmas; a read-only open never creates or writes.

    Returned connections are in autocommit mode and may be used from another
    thread than the one that opened them (each is still used by one at a time).
    """
    if readonly:
        uri = f"{path.resolve().as_uri()}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError as exc:
            # A WAL database in a directory we cannot write (a read-only mount): SQLite cannot
            # make its -shm file. Read the main file as it stands (what was checkpointed).
            if (getattr(exc, "sqlite_errorcode", 0) & 0xFF) not in (8, 14):  # READONLY, CANTOPEN
                conn.close()
                raise
            conn.close()
            conn = sqlite3.connect(f"{uri}&immutable=1", uri=True, isolation_level=None, check_same_thread=False)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        if conn.execute("PRAGMA user_version").fetchone()[0] == 0:
            # Only effective before the first table exists.
            conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        # A flood writes hundreds of MB; checkpoint in steps of 32 MiB rather than the default 1000 pages.
        page = conn.execute("PRAGMA page_size").fetchone()[0]
        conn.execute(f"PRAGMA wal_autocheckpoint = {32 * 2**20 // page}")
    conn.execute("PRAGMA busy_timeout = 5000")
    conn.execute("PRAGMA cache_size = -32000")
    return conn
