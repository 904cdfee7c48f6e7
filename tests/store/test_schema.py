"""Schema versions: an old file is migrated in place, a newer one is refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from fleet.records import LogChunk, UsageRecord
from fleet.store import SCHEMA_VERSION, Store
from fleet.store.schema import PAGE_SIZE, SchemaTooNew

#: Version 1 exactly as it shipped (before the task queue) — frozen here on purpose.
V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE log_chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT, agent TEXT NOT NULL, run_id INTEGER NOT NULL,
    stream TEXT NOT NULL, first_seq INTEGER NOT NULL, count INTEGER NOT NULL, ts REAL NOT NULL,
    ts_end REAL NOT NULL, marks BLOB, nbytes INTEGER NOT NULL, text TEXT NOT NULL
);
CREATE INDEX log_chunks_agent_seq ON log_chunks (agent, first_seq);
CREATE INDEX log_chunks_ts_end ON log_chunks (ts_end);
CREATE VIRTUAL TABLE log_fts USING fts5 (
    text, content='log_chunks', content_rowid='id', detail=none, tokenize='unicode61'
);
CREATE TABLE log_agents (agent TEXT PRIMARY KEY, max_seq INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE events (
    id INTEGER PRIMARY KEY, ts REAL NOT NULL, kind TEXT NOT NULL, agent TEXT, data TEXT NOT NULL
);
CREATE INDEX events_ts ON events (ts);
CREATE TABLE usage (
    id INTEGER PRIMARY KEY, ts REAL NOT NULL, agent TEXT NOT NULL, model TEXT NOT NULL,
    tokens_in INTEGER NOT NULL, tokens_out INTEGER NOT NULL, cost_usd REAL NOT NULL,
    latency_s REAL NOT NULL, outcome TEXT NOT NULL, error TEXT NOT NULL DEFAULT '',
    policy_version INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX usage_ts ON usage (ts);
CREATE INDEX usage_agent ON usage (agent, id);
CREATE TABLE approvals (
    id INTEGER PRIMARY KEY, agent TEXT NOT NULL, action TEXT NOT NULL, details TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'denied', 'expired')),
    created REAL NOT NULL, timeout_s REAL NOT NULL, policy_version INTEGER NOT NULL,
    decided_at REAL, decided_by TEXT, reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX approvals_status ON approvals (status);
CREATE TABLE audit (
    id INTEGER PRIMARY KEY, ts REAL NOT NULL, action TEXT NOT NULL, target TEXT NOT NULL,
    origin TEXT NOT NULL, details TEXT NOT NULL
);
CREATE TABLE policy_versions (
    version INTEGER PRIMARY KEY AUTOINCREMENT, content_hash TEXT NOT NULL, content TEXT NOT NULL,
    diff TEXT NOT NULL, applied_at REAL NOT NULL
);
PRAGMA user_version = 1;
"""


def make_v1(db: Path) -> None:
    conn = sqlite3.connect(db)
    conn.executescript(V1)
    conn.execute(
        "INSERT INTO log_chunks (agent, run_id, stream, first_seq, count, ts, ts_end, nbytes, text)"
        " VALUES ('old', 1, 'stdout', 1, 2, 1000.0, 1000.0, 24, 'first old line\nsecond old\n')"
    )
    conn.execute("INSERT INTO log_agents VALUES ('old', 2)")
    conn.execute("INSERT INTO events (ts, kind, agent, data) VALUES (1000.0, 'state', 'old', '{\"to\": \"running\"}')")
    conn.execute("INSERT INTO policy_versions (content_hash, content, diff, applied_at) VALUES ('h1', 'c', '', 1000.0)")
    conn.commit()
    conn.close()


async def test_migrates_v1_in_place(tmp_path: Path) -> None:
    db = tmp_path / "fleet.db"
    make_v1(db)
    store = await Store.open(db)
    try:
        conn = sqlite3.connect(db)
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 5
        assert conn.execute("SELECT count(*) FROM tasks").fetchone()[0] == 0
        conn.close()
        # Old data is intact and usable: unindexed old chunks are indexed in the background.
        assert [ln.text for ln in await store.tail("old")] == ["first old line", "second old"]
        assert await store.max_seqs() == {"old": 2}
        # New lines go to a segment file; old (inline) and new rows read, index and search as one.
        store.append_logs([LogChunk("old", 2, "stdout", 3, 1, 2000.0, "third, a second life\n")])
        await store.flush()
        assert [ln.text for ln in await store.tail("old")] == ["first old line", "second old", "third, a second life"]
        await store.wait_indexed()
        assert [ln.seq for ln in await store.search("second")] == [2, 3]
        assert (await store.events())[0].data == {"to": "running"}
        assert await store.add_policy_version("h2", "c2", "d") == 2
        # v5: usage rows say which API the call came through; an old row reads as "sdk".
        conn = sqlite3.connect(db)
        conn.execute(
            "INSERT INTO usage (ts, agent, model, tokens_in, tokens_out, cost_usd, latency_s, outcome)"
            " VALUES (1000.0, 'old', 'm', 1, 2, 0.0, 0.1, 'ok')"
        )
        conn.commit()
        conn.close()
        await store.add_usage(UsageRecord("old", "m", 1, 2, 0.0, 0.1, "ok", 2000.0, endpoint="openai.chat"))
        assert [r.endpoint for r in await store.recent_usage("old")] == ["sdk", "openai.chat"]
    finally:
        await store.close()
    # A file made with 4 KiB pages (before 16 KiB) is migrated and written as it is.
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA page_size").fetchone()[0] == 4096
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


async def test_fresh_file_has_current_version_and_wal(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "deep" / "dir" / "fleet.db")
    await store.close()
    conn = sqlite3.connect(tmp_path / "deep" / "dir" / "fleet.db")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA page_size").fetchone()[0] == PAGE_SIZE == 16384
    conn.close()


async def test_refuses_newer_schema(tmp_path: Path) -> None:
    db = tmp_path / "fleet.db"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(SchemaTooNew):
        await Store.open(db)
