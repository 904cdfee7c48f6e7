"""Synchronous queries over ``fleet.db``, shared by the async ``Store`` and the CLI.

Every function takes a plain ``sqlite3.Connection`` so that ``fleet logs`` can
read last night's history with no fleet running (``open_readonly``), and the
``Store`` can run the very same code on its reader thread. In WAL mode readers
never block the writer, nor the writer them.

Logs are stored as chunks of lines (see ``schema``); these functions read a
row's bytes from its segment file (``segments``) and split them back into
``LogLine`` objects only for the rows a query actually reaches.
"""

from __future__ import annotations

import json
import re
import sqlite3
from array import array
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from fleet.records import Event, LogLine, UsageRecord
from fleet.store import segments

try:  # SIMD prefilters for searches (see ``_prefilter``); plain Python does without them.
    from stringzilla import find as _sz_find
    from stringzilla import utf8_uncased_search as _sz_uncased
except ImportError:  # pragma: no cover - stringzilla is a dependency
    _sz_find = None
    _sz_uncased = None
from fleet.store.filters import and_terms
from fleet.store.schema import connect

#: Coalesced rows never span more than this many seconds (the writer enforces it);
#: the merged all-agents tail relies on it to know when it may stop reading rows.
MAX_ROW_SPAN_S = 1.0

#: A chunk row as queried: its text is inline (``text``) or in a segment (``seg``, ``off``, ``nbytes``).
_CHUNK_COLS = "id, agent, run_id, stream, first_seq, count, ts, marks, text, seg, off, nbytes"

#: A chunk row with its text in hand.
_ChunkRow = tuple[int, str, int, str, int, int, float, bytes | None, str]


def _with_text(
    conn: sqlite3.Connection,
    rows: Iterable[tuple[Any, ...]],
    may_match: Callable[[bytes], bool] | None = None,
    logs_dir: Path | None = None,
) -> Iterator[tuple[Any, ...]]:
    """``rows`` of ``_CHUNK_COLS`` (plus any further columns) as ``_ChunkRow`` (plus the same
    further columns), the text read from the segment files only as each row is reached.

    Rows whose bytes fail ``may_match`` are skipped before anything is decoded.
    """
    d = logs_dir if logs_dir is not None else segments.db_logs_dir(conn)
    for row in rows:
        text, seg, off, nbytes = row[8:12]
        if seg is not None:
            data = segments.READER.read(d, seg, off, nbytes) if d is not None else None
            if data is None:
                text = segments.missing_text(seg, row[5])
            elif may_match is not None and not may_match(data):
                continue
            else:
                text = data.decode("utf-8", "replace")
        yield (*row[:8], text, *row[12:])


def _prefilter(text: str) -> Callable[[bytes], bool] | None:
    """A quick test on a row's raw bytes that every row holding ``text`` (in any case) passes.

    It spares decoding and case-folding the rows that cannot match — all but a few
    in a scan of an unindexed tail: StringZilla's SIMD search runs at ~3 GB/s
    uncased and ~20 GB/s for text without letters, where decode + ``lower`` +
    ``in`` ran at ~0.6 GB/s (500 MB: 0.18 s / 0.03 s against 0.8 s here). The
    exact, per-line test (``line_matcher``) still decides on the rows that pass.
    """
    if not text or "\ufffd" in text:  # a replacement character stands for bytes the search cannot know
        return None
    try:
        needle = text.encode()
    except UnicodeEncodeError:  # a lone surrogate (from JSON): let the exact test say no
        return None
    if text.lower() == text.upper():  # no cased character: case cannot differ
        if _sz_find is None:
            return lambda data: needle in data
        return lambda data: _sz_find(data, needle) != -1
    if _sz_uncased is None:
        return None
    # Unicode case folding matches at least what lower() does (and 'ß' with 'SS' too).
    return lambda data: _sz_uncased(data, needle) != -1


def open_readonly(path: Path) -> sqlite3.Connection:
    """Open ``<state_dir>/fleet.db`` read-only (URI ``mode=ro``); nothing is created or written."""
    return connect(Path(path), readonly=True)


# --------------------------------------------------------------------- logs


class _Times:
    """Per-line timestamps of one chunk row: its ts, or the ``marks`` where ts changes."""

    __slots__ = ("idx", "ts", "tss")

    def __init__(self, ts: float, marks: bytes | None) -> None:
        self.ts = ts
        if marks:
            flat = array("d", marks)
            self.idx: list[float] = [0.0, *flat[0::2]]
            self.tss: list[float] = [ts, *flat[1::2]]
        else:
            self.idx = []
            self.tss = []

    def at(self, i: int) -> float:
        if not self.idx:
            return self.ts
        return self.tss[bisect_right(self.idx, i) - 1]


def _row_lines(row: _ChunkRow) -> list[LogLine]:
    _id, agent, run_id, stream, first_seq, count, ts, marks, text = row
    times = _Times(ts, marks)
    parts = text.split("\n", count)[:count]
    if not marks:
        return [LogLine(agent, first_seq + i, ts, stream, line, run_id) for i, line in enumerate(parts)]
    return [LogLine(agent, first_seq + i, times.at(i), stream, line, run_id) for i, line in enumerate(parts)]


def tail(
    conn: sqlite3.Connection,
    agent: str | None,
    n: int = 1000,
    before_seq: int | None = None,
    streams: list[str] | None = None,
    since: float | None = None,
    before: tuple[float, str, int] | None = None,
) -> list[LogLine]:
    """The last ``n`` lines, oldest first.

    With ``agent`` the lines of that agent instance before ``before_seq`` (for
    paging back); with ``agent=None`` all agents merged in (ts, agent, seq)
    order, before the cursor ``before`` when given (lines of one read share a
    timestamp, so the time alone cannot be a cursor). ``since`` keeps lines
    with ``ts >= since``.
    """
    if n <= 0:
        return []
    if agent is None:
        return _tail_all(conn, n, streams, since, before)
    params: list[Any] = [agent]
    sql = f"SELECT {_CHUNK_COLS} FROM log_chunks WHERE agent = ?" + and_terms(
        params, ("first_seq < ?", before_seq), ("ts_end >= ?", since), ("stream IN (?)", streams)
    )
    sql += " ORDER BY first_seq DESC"
    out: list[LogLine] = []
    for row in _with_text(conn, conn.execute(sql, params)):
        lines = _row_lines(row)
        if before_seq is not None and row[4] + row[5] > before_seq:
            lines = [ln for ln in lines if ln.seq < before_seq]
        if since is not None and row[6] < since:
            lines = [ln for ln in lines if ln.ts >= since]
        lines.reverse()
        out.extend(lines)
        if len(out) >= n:
            break
    del out[n:]
    out.reverse()
    return out


def salvage_tail(
    conn: sqlite3.Connection, name: str | None, n: int, grep: str | None = None, since: float | None = None,
    logs_dir: Path | None = None,
) -> tuple[list[LogLine], str | None]:
    """The last ``n`` lines of ``name`` (an instance or a group; None: all) that a damaged
    database still yields, and the error that stopped the scan (None if it read to the end).

    For ``fleet logs`` when the normal, indexed query fails: rows are read in table order,
    with no index (an index page may be what is gone), until SQLite reports the damage.
    """
    from collections import deque

    out: deque[LogLine] = deque(maxlen=max(n, 0))
    rx = line_matcher(grep) if grep else None
    error: str | None = None
    try:
        rows = conn.execute(f"SELECT {_CHUNK_COLS} FROM log_chunks NOT INDEXED")
        for row in _with_text(conn, rows, logs_dir=logs_dir):
            agent = row[1]
            if name is not None and agent != name and agent.split("#", 1)[0] != name:
                continue
            for line in _row_lines(row):
                if since is not None and line.ts < since:
                    continue
                if rx is not None and not rx.search(line.text):
                    continue
                out.append(line)
    except sqlite3.DatabaseError as exc:
        error = str(exc)
    return sorted(out, key=lambda ln: (ln.ts, ln.agent, ln.seq)), error


def _tail_all(
    conn: sqlite3.Connection,
    n: int,
    streams: list[str] | None,
    since: float | None,
    before: tuple[float, str, int] | None = None,
) -> list[LogLine]:
    # Rows newest-last-line first: once ``n`` lines are in hand, a row whose last line
    # is older than the n-th newest line cannot contribute, nor can any row after it.
    params: list[Any] = []
    sql = f"SELECT {_CHUNK_COLS}, ts_end FROM log_chunks WHERE 1" + and_terms(
        params, ("ts_end >= ?", since), ("ts <= ?", before[0] if before is not None else None),
        ("stream IN (?)", streams),
    )
    sql += " ORDER BY ts_end DESC"
    got: list[LogLine] = []
    floor: float | None = None
    for row in _with_text(conn, conn.execute(sql, params)):
        if floor is not None and row[9] < floor:
            break
        lines = _row_lines(row[:9])
        if since is not None:
            lines = [ln for ln in lines if ln.ts >= since]
        if before is not None:
            lines = [ln for ln in lines if (ln.ts, ln.agent, ln.seq) < before]
        got.extend(lines)
        if len(got) >= n:
            got.sort(key=lambda ln: (ln.ts, ln.agent, ln.seq))
            del got[:-n]
            floor = got[0].ts
    got.sort(key=lambda ln: (ln.ts, ln.agent, ln.seq))
    return got[-n:]


def chunk_texts(conn: sqlite3.Connection, streams: list[str] | None = None) -> Iterator[str]:
    """The text of every stored chunk in the order it was written (exports, benchmarks' checks)."""
    params: list[Any] = []
    sql = f"SELECT {_CHUNK_COLS} FROM log_chunks WHERE 1{and_terms(params, ('stream IN (?)', streams))} ORDER BY id"
    for row in _with_text(conn, conn.execute(sql, params)):
        yield row[8]


_TOKEN = re.compile(r"[^\W_]+")


def fts_query(text: str) -> str | None:
    """FTS5 query for ``text``: its tokens ANDed, the last one as a prefix.

    ``None`` when the text holds no token (punctuation only): then only a scan
    can answer. Tokens follow unicode61: letters and digits; the rest separates.
    """
    tokens = _TOKEN.findall(text)
    if not tokens:
        return None
    terms = [f'"{t}"' for t in tokens]
    # The last token may be cut short ("connection refu"): match it as a prefix,
    # unless the text goes on past it (then it is a whole word in the line).
    if _TOKEN.fullmatch(text[-1]):
        terms[-1] += "*"
    return " AND ".join(terms)


def line_matcher(text: str) -> re.Pattern[str]:
    """The line-level test a search applies; the same for indexed and unindexed chunks.

    Case-insensitive substring, anchored at a word start when ``text`` starts with
    a letter or digit — the FTS index finds words by their start, so a line that
    holds ``text`` only inside a word would be found in the unindexed tail but not
    in the indexed part; anchoring makes results independent of indexing progress.
    """
    pat = re.escape(text)
    if _TOKEN.match(text):
        pat = r"(?<![^\W_])" + pat
    return re.compile(pat, re.IGNORECASE)


def _match_lines(row: _ChunkRow, rx: re.Pattern[str], since: float | None, low: str | None = None) -> list[LogLine]:
    """Lines of one chunk row that match, oldest first (no per-line work for non-matching text).

    Candidates are found with ``str.find`` on the lower-cased chunk (~650 MB/s;
    the anchored regex alone runs at ~45 MB/s), then checked with ``rx``.
    """
    _id, agent, run_id, stream, first_seq, count, ts, marks, text = row
    low = low if low is not None else ""
    folded = text.lower()
    if low not in folded:
        return []
    if len(folded) != len(text):  # lower() changed lengths (rare scripts): positions differ
        folded = ""
    times: _Times | None = None
    out: list[LogLine] = []
    line_no = 0
    scan = 0  # newlines before ``scan`` are counted in ``line_no``
    size = len(text)
    while scan < size:
        if folded:
            start = folded.find(low, scan)
            if start < 0:
                break
            if not rx.match(text, start):
                # A hit inside a word: look again just after it (same line or later).
                line_no += text.count("\n", scan, start + 1)
                scan = start + 1
                continue
        else:
            m = rx.search(text, scan)
            if m is None:
                break
            start = m.start()
        line_no += text.count("\n", scan, start)
        if line_no >= count:
            break
        begin = text.rfind("\n", 0, start) + 1
        end = text.find("\n", start)
        if end < 0:
            end = size
        if start + len(low) <= end:
            if marks:
                times = times or _Times(ts, marks)
                line_ts = times.at(line_no)
            else:
                line_ts = ts
            if since is None or line_ts >= since:
                out.append(LogLine(agent, first_seq + line_no, line_ts, stream, text[begin:end], run_id))
        # One hit per line: go on after this line's newline.
        scan = end + 1
        line_no += 1
    return out


def indexed_upto(conn: sqlite3.Connection) -> int:
    """Highest chunk id already in the FTS index."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'fts_upto'").fetchone()
    return int(row[0]) if row else 0


def search(
    conn: sqlite3.Connection,
    text: str,
    agent: str | None = None,
    limit: int = 500,
    since: float | None = None,
) -> list[LogLine]:
    """The newest ``limit`` lines containing ``text`` (case-insensitive), oldest first.

    Combines the FTS index over the indexed chunks with a plain scan of the chunks
    the background indexer has not reached yet, so a line written a moment ago is
    found too.
    """
    if not text or limit <= 0:
        return []
    rx = line_matcher(text)
    low = text.lower()
    upto = indexed_upto(conn)
    params: list[Any] = []
    filt = and_terms(params, ("c.agent = ?", agent), ("c.ts_end >= ?", since))
    cols = ", ".join(f"c.{c.strip()}" for c in _CHUNK_COLS.split(","))
    sources: list[Iterable[_ChunkRow]] = [
        conn.execute(f"SELECT {cols} FROM log_chunks c WHERE c.id > ?{filt} ORDER BY c.id DESC", [upto, *params])
    ]
    query = fts_query(text)
    if query is not None:
        sources.append(
            conn.execute(
                f"SELECT {cols} FROM log_fts f JOIN log_chunks c ON c.id = f.rowid"
                f" WHERE log_fts MATCH ? AND f.rowid <= ?{filt} ORDER BY f.rowid DESC",
                [query, upto, *params],
            )
        )
    else:
        sources.append(
            conn.execute(f"SELECT {cols} FROM log_chunks c WHERE c.id <= ?{filt} ORDER BY c.id DESC", [upto, *params])
        )
    may_match = _prefilter(text)
    out: list[LogLine] = []  # newest first
    for source in sources:
        for row in _with_text(conn, source, may_match):
            lines = _match_lines(row, rx, since, low)
            lines.reverse()
            out.extend(lines)
            if len(out) >= limit:
                del out[limit:]
                out.reverse()
                return out
    out.reverse()
    return out


def max_seqs(conn: sqlite3.Connection) -> dict[str, int]:
    """Last line number stored per agent instance (kept even when retention deleted the lines)."""
    return dict(conn.execute("SELECT agent, max_seq FROM log_agents"))


def log_agents(conn: sqlite3.Connection) -> list[str]:
    """Every agent instance that ever logged."""
    return [r[0] for r in conn.execute("SELECT agent FROM log_agents ORDER BY agent")]


# ------------------------------------------------------------------- others


def events(
    conn: sqlite3.Connection,
    n: int = 200,
    kinds: list[str] | None = None,
    agent: str | None = None,
    since: float | None = None,
) -> list[Event]:
    """The newest ``n`` events matching the filters, newest last."""
    params: list[Any] = []
    sql = "SELECT id, ts, kind, agent, data FROM events WHERE 1" + and_terms(
        params, ("kind IN (?)", kinds), ("agent = ?", agent), ("ts >= ?", since)
    )
    sql += " ORDER BY id DESC LIMIT ?"
    params.append(n)
    rows = conn.execute(sql, params).fetchall()
    rows.reverse()
    return [Event(kind=k, agent=a, data=json.loads(d), ts=ts, id=i) for i, ts, k, a, d in rows]


_ERROR_OUTCOMES = ("error", "timeout")


def usage_totals(conn: sqlite3.Connection, since: float | None = None) -> dict[str, dict[str, Any]]:
    """Per agent: ``tokens_in``, ``tokens_out``, ``cost_usd``, ``calls``, ``errors``.

    ``errors`` counts calls whose outcome is ``error`` or ``timeout`` (a policy
    refusal is not a provider error).
    """
    params: list[Any] = []
    sql = (
        "SELECT agent, SUM(tokens_in), SUM(tokens_out), SUM(cost_usd), COUNT(*),"
        " SUM(outcome IN ('error', 'timeout')) FROM usage WHERE 1" + and_terms(params, ("ts >= ?", since))
    )
    sql += " GROUP BY agent"
    return {
        a: {"tokens_in": ti or 0, "tokens_out": to or 0, "cost_usd": c or 0.0, "calls": n, "errors": e or 0}
        for a, ti, to, c, n, e in conn.execute(sql, params)
    }


def recent_usage(conn: sqlite3.Connection, agent: str | None = None, n: int = 50) -> list[UsageRecord]:
    """The newest ``n`` LLM calls, newest last."""
    params: list[Any] = []
    sql = (
        "SELECT agent, model, tokens_in, tokens_out, cost_usd, latency_s, outcome, ts, error, policy_version,"
        " endpoint FROM usage WHERE 1" + and_terms(params, ("agent = ?", agent))
    )
    sql += " ORDER BY id DESC LIMIT ?"
    params.append(n)
    rows = conn.execute(sql, params).fetchall()
    rows.reverse()
    return [UsageRecord(*r) for r in rows]


def approvals(conn: sqlite3.Connection, pending_only: bool = True) -> list[dict[str, Any]]:
    """Approval requests, oldest first."""
    sql = (
        "SELECT id, agent, action, details, status, created, timeout_s, decided_at, decided_by, reason,"
        " policy_version FROM approvals"
    )
    if pending_only:
        sql += " WHERE status = 'pending'"
    sql += " ORDER BY id"
    keys = (
        "id",
        "agent",
        "action",
        "details",
        "status",
        "created",
        "timeout_s",
        "decided_at",
        "decided_by",
        "reason",
        "policy_version",
    )
    out = []
    for row in conn.execute(sql):
        d = dict(zip(keys, row, strict=True))
        d["details"] = json.loads(d["details"])
        out.append(d)
    return out


def audit_log(conn: sqlite3.Connection, n: int = 200) -> list[dict[str, Any]]:
    """The newest ``n`` operator actions, newest last."""
    rows = conn.execute(
        "SELECT id, ts, action, target, origin, details FROM audit ORDER BY id DESC LIMIT ?", (n,)
    ).fetchall()
    rows.reverse()
    return [
        {"id": i, "ts": ts, "action": a, "target": t, "origin": o, "details": json.loads(d)}
        for i, ts, a, t, o, d in rows
    ]


def latest_policy_version(conn: sqlite3.Connection) -> int:
    """Number of the newest policy version, 0 if none was ever applied."""
    return conn.execute("SELECT COALESCE(MAX(version), 0) FROM policy_versions").fetchone()[0]


def policy_version_hash(conn: sqlite3.Connection, version: int) -> str | None:
    """Content hash of policy ``version``, ``None`` if there is no such version."""
    row = conn.execute("SELECT content_hash FROM policy_versions WHERE version = ?", (version,)).fetchone()
    return row[0] if row else None


def policy_versions(conn: sqlite3.Connection, n: int = 50) -> list[dict[str, Any]]:
    """The newest ``n`` policy versions (without content), newest last."""
    rows = conn.execute(
        "SELECT version, content_hash, diff, applied_at FROM policy_versions ORDER BY version DESC LIMIT ?",
        (n,),
    ).fetchall()
    rows.reverse()
    return [{"version": v, "content_hash": h, "diff": d, "applied_at": t} for v, h, d, t in rows]
