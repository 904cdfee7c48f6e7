"""SQL of the task queue: the writes the queue makes and the reads that list and measure it.

The queue itself lives in memory in the supervisor (``fleet.tasks``): choosing
which task goes to which agent must not cost a query. The store is its journal:
every transition is written through the single writer, in the order it happened
(a write is submitted at the moment of the transition, so a lease is always
committed before the ``done`` that follows it). After a supervisor restart the
open tasks — queued and leased — are read back with :func:`open_tasks`.

Writer-side functions take the writer's connection and run inside its
transaction; reader-side functions take any connection, so the CLI can list
tasks and build reports from a read-only file with no fleet running.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from fleet.store.filters import and_terms

#: Columns of a task as returned by the readers, in order.
TASK_COLS = (
    "id",
    "kind",
    "payload",
    "priority",
    "state",
    "attempts",
    "lease_owner",
    "lease_expires",
    "result",
    "error",
    "created",
    "updated",
    "run_id",
    "leased_at",
    "finished_at",
    "added_by",
)
_SELECT = f"SELECT {', '.join(TASK_COLS)} FROM tasks"

# --------------------------------------------------------------------- writes


def insert(conn: sqlite3.Connection, rows: Sequence[tuple[str, str, int, float, str | None]]) -> list[int]:
    """Insert ``(kind, payload_json, priority, created, added_by)`` rows as queued; return their ids."""
    ids: list[int] = []
    for kind, payload, priority, created, added_by in rows:
        cur = conn.execute(
            "INSERT INTO tasks (kind, payload, priority, state, created, updated, added_by)"
            " VALUES (?, ?, ?, 'queued', ?, ?, ?)",
            (kind, payload, priority, created, created, added_by),
        )
        ids.append(int(cur.lastrowid or 0))
    return ids


def lease(
    conn: sqlite3.Connection, task_id: int, agent: str, run_id: int, attempt: int, expires: float, now: float
) -> None:
    """Record that ``agent`` (process run ``run_id``) holds the task, for attempt ``attempt``."""
    conn.execute(
        "UPDATE tasks SET state = 'leased', attempts = ?, lease_owner = ?, lease_expires = ?, run_id = ?,"
        " leased_at = ?, updated = ? WHERE id = ?",
        (attempt, agent, expires, run_id, now, now, task_id),
    )
    conn.execute(
        "INSERT OR REPLACE INTO task_attempts (task_id, attempt, agent, run_id, leased_at) VALUES (?, ?, ?, ?, ?)",
        (task_id, attempt, agent, run_id, now),
    )


def unlease(conn: sqlite3.Connection, task_id: int, attempt: int, now: float) -> None:
    """Undo a lease that never reached its agent: the attempt did not happen."""
    conn.execute(
        "UPDATE tasks SET state = 'queued', attempts = ?, lease_owner = NULL, lease_expires = NULL, run_id = NULL,"
        " leased_at = NULL, updated = ? WHERE id = ?",
        (attempt - 1, now, task_id),
    )
    conn.execute("DELETE FROM task_attempts WHERE task_id = ? AND attempt = ?", (task_id, attempt))


def finish(
    conn: sqlite3.Connection,
    task_id: int,
    attempt: int,
    state: str,
    outcome: str,
    now: float,
    result: str | None = None,
    error: str | None = None,
) -> None:
    """End the current attempt with ``outcome`` (done, failed, lost) and move the task to ``state``.

    ``state`` ``queued`` puts the task back for another attempt; ``done``,
    ``failed`` and ``dead`` are final.
    """
    if state == "queued":
        conn.execute(
            "UPDATE tasks SET state = 'queued', lease_owner = NULL, lease_expires = NULL, run_id = NULL,"
            " error = ?, updated = ? WHERE id = ?",
            (error, now, task_id),
        )
    else:
        conn.execute(
            "UPDATE tasks SET state = ?, lease_expires = NULL, result = ?, error = ?, finished_at = ?, updated = ?"
            " WHERE id = ?",
            (state, result, error, now, now, task_id),
        )
    conn.execute(
        "UPDATE task_attempts SET ended_at = ?, outcome = ?, error = ? WHERE task_id = ? AND attempt = ?",
        (now, outcome, error, task_id, attempt),
    )


def renew(conn: sqlite3.Connection, task_ids: Sequence[int], expires: float) -> None:
    """Push the lease expiry of the tasks held by live agents to ``expires``."""
    conn.executemany(
        "UPDATE tasks SET lease_expires = ? WHERE id = ? AND state = 'leased'", [(expires, i) for i in task_ids]
    )


# --------------------------------------------------------------------- reads


def _row(row: tuple[Any, ...]) -> dict[str, Any]:
    d = dict(zip(TASK_COLS, row, strict=True))
    for key in ("payload", "result"):
        raw = d[key]
        if raw is not None:
            try:
                d[key] = json.loads(raw)
            except ValueError:
                pass
    d["agent"] = d.pop("lease_owner")
    d["attempt"] = d.pop("attempts")
    return d


def open_tasks(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every queued or leased task, oldest first (what a restarted supervisor takes back)."""
    rows = conn.execute(f"{_SELECT} WHERE state IN ('queued', 'leased') ORDER BY id").fetchall()
    return [_row(r) for r in rows]


def list_tasks(
    conn: sqlite3.Connection, states: Sequence[str] | None = None, kind: str | None = None, n: int = 200
) -> list[dict[str, Any]]:
    """The newest ``n`` tasks matching the filters, newest last."""
    params: list[Any] = []
    sql = f"{_SELECT} WHERE 1" + and_terms(params, ("state IN (?)", list(states or ())), ("kind = ?", kind or None))
    sql += " ORDER BY id DESC LIMIT ?"
    params.append(int(n))
    rows = conn.execute(sql, params).fetchall()
    rows.reverse()
    return [_row(r) for r in rows]


def get(conn: sqlite3.Connection, task_id: int) -> dict[str, Any] | None:
    row = conn.execute(f"{_SELECT} WHERE id = ?", (task_id,)).fetchone()
    return _row(row) if row else None


def counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Number of tasks per state (all time)."""
    return dict(conn.execute("SELECT state, COUNT(*) FROM tasks GROUP BY state").fetchall())


def attempts(conn: sqlite3.Connection, since: float | None = None, until: float | None = None) -> list[dict[str, Any]]:
    """Ended attempts (``ended_at`` in ``[since, until)``), oldest first: the raw outcome history."""
    params: list[Any] = []
    sql = (
        "SELECT task_id, attempt, agent, run_id, leased_at, ended_at, outcome, error FROM task_attempts"
        " WHERE ended_at IS NOT NULL" + and_terms(params, ("ended_at >= ?", since), ("ended_at < ?", until))
    )
    sql += " ORDER BY ended_at"
    keys = ("task_id", "attempt", "agent", "run_id", "leased_at", "ended_at", "outcome", "error")
    return [dict(zip(keys, r, strict=True)) for r in conn.execute(sql, params)]
