"""Log bytes in segment files: recovery after a crash, missing files, rolling, retention, retries."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest

from fleet.records import LogChunk
from fleet.store import Store, indexer, open_readonly, readers, segments

from .conftest import make_chunks


def seg_files(state: Path) -> dict[int, int]:
    """Segment number -> size of the files in ``state/logs``."""
    d = state / "logs"
    return {n: segments.segment_path(d, n).stat().st_size for n in segments.segment_numbers(d)}


def append_bytes(path: Path, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)


def committed_end(db: Path) -> dict[int, int]:
    conn = sqlite3.connect(db)
    try:
        return dict(conn.execute("SELECT seg, MAX(off + nbytes) FROM log_chunks WHERE seg IS NOT NULL GROUP BY seg"))
    finally:
        conn.close()


async def test_bytes_go_to_a_private_segment_exactly_as_written(tmp_path: Path) -> None:
    db = tmp_path / "fleet.db"
    store = await Store.open(db)
    raw = b"plain line\n\xff\xfe not utf-8 \x1b[31mred\x1b[0m\n"
    store.append_logs([LogChunk("a", 1, "stdout", 1, 2, time.time(), raw)])
    await store.flush()
    assert [ln.text for ln in await store.tail("a")] == ["plain line", "\ufffd\ufffd not utf-8 \x1b[31mred\x1b[0m"]
    await store.close()
    logs = tmp_path / "logs"
    assert (logs.stat().st_mode & 0o777) == 0o700
    path = segments.segment_path(logs, 1)
    assert (path.stat().st_mode & 0o777) == 0o600
    assert path.read_bytes() == raw  # nothing decoded or re-encoded on the way
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT text, seg, off, nbytes FROM log_chunks").fetchall() == [("", 1, 0, len(raw))]
    conn.close()


async def test_reopen_cuts_what_no_committed_row_points_to(tmp_path: Path) -> None:
    """A crash between writing a batch's bytes and committing its rows leaves bytes behind: they go."""
    db = tmp_path / "fleet.db"
    store = await Store.open(db)
    store.append_logs(make_chunks("a", 1, 50, 10))
    await store.close()
    logs = tmp_path / "logs"
    good = seg_files(tmp_path)[1]
    append_bytes(segments.segment_path(logs, 1), b"a line whose row never committed\n")
    segments.segment_path(logs, 2).write_bytes(b"a segment opened just before the crash\n")

    store = await Store.open(db)
    assert seg_files(tmp_path) == {1: good}
    store.append_logs(make_chunks("a", 51, 5, 5))
    await store.flush()
    lines = await store.tail("a", n=100)
    assert [ln.seq for ln in lines] == list(range(1, 56))
    assert all(ln.text.startswith(f"a line {ln.seq} ") for ln in lines)
    await store.close()
    assert seg_files(tmp_path) == committed_end(db)


async def test_a_missing_segment_is_reported_in_its_lines_and_writing_goes_on(tmp_path: Path) -> None:
    db = tmp_path / "fleet.db"
    store = await Store.open(db)
    store.append_logs(make_chunks("a", 1, 3, 3))
    await store.close()
    os.unlink(segments.segment_path(tmp_path / "logs", 1))  # removed by hand, or lost to a power cut

    store = await Store.open(db)
    store.append_logs(make_chunks("a", 4, 2, 2))
    await store.flush()
    lines = await store.tail("a")
    assert [ln.seq for ln in lines] == [1, 2, 3, 4, 5]
    assert all("segment 00000001 is gone" in ln.text for ln in lines[:3])
    assert [ln.text for ln in lines[3:]] == ["a line 4 payload-4", "a line 5 payload-5"]
    assert [ln.seq for ln in await store.search("payload")] == [4, 5]
    await store.close()
    # The new lines went to a new segment, not into the hole the old one left.
    assert set(committed_end(db)) == {1, 2} and seg_files(tmp_path) == {2: committed_end(db)[2]}


async def test_segments_roll_and_retention_deletes_whole_files(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(segments, "SEGMENT_BYTES", 4096)
    db = tmp_path / "fleet.db"
    store = await Store.open(db)
    for i in range(20):  # one batch per flush: segments roll between batches
        store.append_logs(make_chunks("a", 1 + i * 100, 100, 100))
        await store.flush()
    before = seg_files(tmp_path)
    assert len(before) >= 10 and all(size < 4096 + 8 * 1024 for size in before.values())
    await store.wait_indexed()
    store.set_retention(mb=0.01)
    await store.apply_retention()
    after = seg_files(tmp_path)
    assert after and len(after) < len(before) and min(after) > min(before)
    assert set(after) == set(committed_end(db))  # every file left is still pointed to, and vice versa
    kept = await store.tail("a", n=10_000)
    assert kept[-1].seq == 2000 and kept[-1].text == "a line 2000 payload-60"
    assert await store.search("payload-60") == [ln for ln in kept if ln.text.endswith(" payload-60")]
    await store.close()


async def test_a_failed_commit_does_not_leave_its_bytes_twice(tmp_path: Path) -> None:
    db = tmp_path / "fleet.db"
    store = await Store.open(db)
    failures = [sqlite3.OperationalError("disk I/O error (simulated)")]

    def flaky() -> None:
        if failures:
            raise failures.pop()

    store._writer.delay_hook = flaky  # type: ignore[union-attr]
    store.append_logs(make_chunks("a", 1, 40, 10))
    await store.flush()
    assert not failures
    assert [ln.seq for ln in await store.tail("a")] == list(range(1, 41))
    await store.close()
    assert seg_files(tmp_path) == committed_end(db)  # the retried batch once, nothing of the failed try


async def test_the_cli_reads_segments_with_no_fleet_running(tmp_path: Path) -> None:
    db = tmp_path / "fleet.db"
    store = await Store.open(db)
    store.append_logs(make_chunks("a", 1, 5, 5))
    await store.close()
    conn = open_readonly(db)
    try:
        assert [ln.text for ln in readers.tail(conn, "a", 2)] == ["a line 4 payload-4", "a line 5 payload-5"]
        assert list(readers.chunk_texts(conn)) == ["".join(f"a line {s} payload-{s}\n" for s in range(1, 6))]
    finally:
        conn.close()


async def test_logs_that_never_go_quiet_are_indexed_once_the_tail_is_old(tmp_path: Path, monkeypatch) -> None:
    """A chatty fleet is never quiet for FTS_QUIET_S: its tail is indexed by age, between batches."""
    monkeypatch.setattr(indexer, "FTS_MAX_LAG_S", 0.3)
    monkeypatch.setattr(indexer, "FTS_QUIET_S", 3600.0)  # never "quiet" in this test
    store = await Store.open(tmp_path / "fleet.db")
    seq = 1
    deadline = time.monotonic() + 30
    while store.stats()["indexed_upto"] == 0:
        assert time.monotonic() < deadline, "the index never caught up with a chatty fleet"
        for chunk in make_chunks("chatty", seq, 4, 1):  # a few lines per pass, every pass
            store.append_logs([chunk])
        seq += 4
        await store.flush()
    assert store.stats()["indexed_upto"] > 0
    await store.close()


@pytest.mark.parametrize("count", [1, 3])
def test_missing_text_keeps_one_line_per_line(count: int) -> None:
    text = segments.missing_text(7, count)
    assert text.count("\n") == count and "segment 00000007" in text


def test_writes_are_cut_into_calls_of_bounded_size_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ``pwritev`` carries at most ``WRITE_BYTES`` and ``_IOV_MAX`` buffers; the file is exact."""
    calls: list[tuple[int, int]] = []
    real = segments._pwritev

    def spy(fd: int, buffers: list[bytes | memoryview], offset: int) -> int:
        calls.append((len(buffers), sum(len(b) for b in buffers)))
        return real(fd, buffers, offset)

    monkeypatch.setattr(segments, "_pwritev", spy)
    monkeypatch.setattr(segments, "_IOV_MAX", 8)
    d = tmp_path / "logs"
    d.mkdir()
    writer = segments.SegmentWriter(d, 1, 0)
    big = bytes(range(256)) * (3 * segments.WRITE_BYTES // 256 + 7)  # cut into views
    small = [bytes([65 + i % 26]) * (1000 + i) for i in range(40)]
    rows = [[small[0], small[1]], [big], *([b] for b in small[2:])]
    places = writer.append(rows)
    writer.close()
    want = b"".join(b"".join(bytes(b) for b in row) for row in rows)
    assert segments.segment_path(d, 1).read_bytes() == want
    assert places[0] == (1, 0) and places[1] == (1, len(small[0]) + len(small[1]))
    assert all(n <= 8 and size <= segments.WRITE_BYTES for n, size in calls)
    assert sum(size for _, size in calls) == len(want)
    assert len(calls) >= 4  # the big row alone needs more than three
