"""The pipe reader's line handling, byte by byte."""

from __future__ import annotations

import asyncio
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleet.supervisor.logpipe import CUT_MARKER, MAX_LINE, LogPipe, cap_lines, count_lines, has_long_line


@given(st.lists(st.integers(0, 3 * 1024), max_size=40), st.integers(1, 2048))
def test_has_long_line_agrees_with_splitting(lengths, limit):
    data = b"".join(b"x" * n + b"\n" for n in lengths)
    assert has_long_line(data, limit) == any(n > limit for n in lengths)


def test_cap_lines_cuts_only_the_long_ones():
    data = b"short\n" + b"y" * (MAX_LINE + 10) + b"\nend\n"
    out, cut = cap_lines(data)
    assert cut == 1
    lines = out.split(b"\n")
    assert lines[0] == b"short" and lines[2] == b"end"
    assert lines[1] == b"y" * MAX_LINE + CUT_MARKER


async def test_pipe_joins_partial_lines_and_cuts_an_endless_one():
    got: list[tuple[str, int, str]] = []
    pipe = LogPipe("stdout", lambda stream, n, data, ts: got.append((stream, n, str(data, "utf-8", "replace"))))
    pipe.feed(b"hel")
    pipe.feed(b"lo\nwor")
    pipe.feed(b"ld\n")
    pipe.feed(b"z" * (MAX_LINE + 5))  # no newline yet: emitted cut, rest skipped
    pipe.feed(b"zzz\nafter\n\xff\n")
    pipe.feed(b"tail without newline")
    pipe.eof()
    texts = "".join(t for _, _, t in got).split("\n")
    assert texts[:2] == ["hello", "world"]
    assert texts[2].startswith("z" * 100) and texts[2].endswith("line cut at 64 KiB]")
    assert texts[3:6] == ["after", "\ufffd", "tail without newline"]
    assert sum(n for _, n, _ in got) == 6
    await asyncio.sleep(0)


@given(st.binary(max_size=4096))
def test_count_lines_agrees_with_bytes_count(data):
    assert count_lines(data) == data.count(b"\n")
    assert count_lines(memoryview(data)[1:]) == data[1:].count(b"\n")


def test_count_lines_on_reads_bigger_than_its_scratch():
    data = (b"x" * 99 + b"\n") * 20_000 + b"\n\n"  # 2 MB: more than one read
    assert count_lines(data) == count_lines(memoryview(data)) == 20_002
    assert count_lines(b"no newline at all" * 100) == 0


@given(
    st.lists(st.binary(max_size=300).map(lambda b: b.replace(b"\n", b"")), max_size=60),
    st.lists(st.integers(1, 700), max_size=30),
)
def test_lines_survive_any_split_into_reads(lines, cuts):
    """However the bytes arrive, the lines come out whole, in order, and counted."""
    data = b"".join(line + b"\n" for line in lines)
    got: list[tuple[int, bytes]] = []
    pipe = LogPipe("stdout", lambda _s, n, data, _ts: got.append((n, bytes(data))))
    pos = 0
    for size in cuts:
        pipe.feed(data[pos : pos + size])
        pos += size
    pipe.feed(data[pos:])
    pipe.eof()
    assert b"".join(t for _, t in got) == data  # bytes as written: nothing decoded on the way
    assert sum(n for n, _ in got) == len(lines)
    assert all(t.endswith(b"\n") and t.count(b"\n") == n for n, t in got)


async def test_reading_a_real_pipe_until_eof_with_pause():
    got: list[bytes] = []
    closed: list[LogPipe] = []
    pipe = LogPipe("stderr", lambda _s, _n, data, _ts: got.append(bytes(data)), closed.append)
    r, w = os.pipe()
    pipe.pause()  # paused before it starts: nothing is read until resumed
    pipe.start(r)
    os.write(w, b"one\ntwo\nthr")
    os.close(w)
    for _ in range(5):
        await asyncio.sleep(0)
    assert got == [] and not pipe.closed.done()
    pipe.resume()
    await pipe.closed
    assert b"".join(got) == b"one\ntwo\nthr\n"
    assert closed == [pipe] and pipe.bytes_read == 11
    with pytest.raises(OSError):
        os.fstat(r)  # the pipe owned the fd and closed it


def _rss_kib() -> int:
    with open("/proc/self/status") as f:
        return int(f.read().split("VmRSS:")[1].split()[0])


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc")
def test_quiet_pipes_cost_pages_not_their_whole_buffer():
    """400 pipes (200 agents) that saw a line each: a page or two apiece, not 320 KiB apiece."""
    before = _rss_kib()
    pipes = [LogPipe("stdout", lambda *_: None) for _ in range(400)]
    for pipe in pipes:
        pipe.feed(b"one short line\npartial")
    grown_mib = (_rss_kib() - before) / 1024
    assert grown_mib < 32, f"{grown_mib:.0f} MiB for 400 quiet pipes"  # 125 MiB if every buffer were touched
