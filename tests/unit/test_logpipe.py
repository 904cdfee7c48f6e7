"""The pipe reader's line handling, byte by byte."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from fleet.supervisor.logpipe import CUT_MARKER, MAX_LINE, LogPipe, cap_lines, has_long_line


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
    pipe = LogPipe("stdout", lambda stream, n, text, ts: got.append((stream, n, text)))
    pipe.data_received(b"hel")
    pipe.data_received(b"lo\nwor")
    pipe.data_received(b"ld\n")
    pipe.data_received(b"z" * (MAX_LINE + 5))  # no newline yet: emitted cut, rest skipped
    pipe.data_received(b"zzz\nafter\n\xff\n")
    pipe.data_received(b"tail without newline")
    pipe.eof_received()
    texts = "".join(t for _, _, t in got).split("\n")
    assert texts[:2] == ["hello", "world"]
    assert texts[2].startswith("z" * 100) and texts[2].endswith("line cut at 64 KiB]")
    assert texts[3:6] == ["after", "\ufffd", "tail without newline"]
    assert sum(n for _, n, _ in got) == 6
    await asyncio.sleep(0)
