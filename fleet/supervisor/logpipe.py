"""Reading an agent's stdout/stderr: whole chunks, complete lines, bounded lines.

The event loop hands us up to 256 KiB per read. We split once at the last
newline (the tail waits for the next read), count lines with ``bytes.count``
and decode once, so the per-line cost stays in C. Only a chunk big enough to
hide an over-long line is split into lines to enforce the 64 KiB cap. The
supervisor can ``pause_reading`` a pipe: the agent then blocks on write, as
it would under a slow terminal, instead of the supervisor dropping lines or
buffering without bound.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

MAX_LINE = 64 * 1024
CUT_MARKER = b" [\xe2\x80\xa6 line cut at 64 KiB]"

#: ``sink(stream, count, text, ts)``; text holds ``count`` lines, each ending in "\n".
Sink = Callable[[str, int, str, float], None]


def has_long_line(data: bytes, limit: int = MAX_LINE) -> bool:
    """Whether any line in ``data`` is longer than ``limit``, without splitting it.

    Jumps to the last newline within the next ``limit + 1`` bytes: a few C-level
    ``rfind`` calls per 256 KiB read instead of one Python step per line.
    """
    pos, end = 0, len(data)
    while end - pos > limit:
        nl = data.rfind(b"\n", pos, pos + limit + 1)
        if nl == -1:
            return True
        pos = nl + 1
    return False


def cap_lines(complete: bytes, limit: int = MAX_LINE) -> tuple[bytes, int]:
    """Cut every line longer than ``limit`` bytes; return (data, number of lines cut)."""
    if not has_long_line(complete, limit):
        return complete, 0
    lines = complete.split(b"\n")
    cut = 0
    for i, line in enumerate(lines):
        if len(line) > limit:
            lines[i] = line[:limit] + CUT_MARKER
            cut += 1
    return (b"\n".join(lines), cut) if cut else (complete, 0)


class LogPipe(asyncio.Protocol):
    """Protocol for one read pipe (stdout or stderr of one process run)."""

    def __init__(self, stream: str, sink: Sink, on_eof: Callable[[LogPipe], None] | None = None) -> None:
        self.stream = stream
        self._sink = sink
        self._on_eof = on_eof
        self._partial = b""
        self._skipping = False  # inside an over-long line whose head was already emitted
        self.transport: asyncio.ReadTransport | None = None
        self.closed = asyncio.get_event_loop().create_future()
        self.bytes_read = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.bytes_read += len(data)
        if self._partial:
            data = self._partial + data
            self._partial = b""
        last = data.rfind(b"\n")
        if last == -1:
            self._hold(data)
            return
        complete = data[: last + 1]
        rest = data[last + 1 :]
        if self._skipping:
            # Drop the remainder of a line we already emitted cut.
            first_nl = complete.find(b"\n")
            complete = complete[first_nl + 1 :]
            self._skipping = False
        if len(complete) > MAX_LINE:
            complete, _ = cap_lines(complete)
        if complete:
            self._emit(complete)
        if rest:
            self._hold(rest)

    def _hold(self, tail: bytes) -> None:
        if self._skipping:
            return
        if len(tail) > MAX_LINE:
            self._emit(tail[:MAX_LINE] + CUT_MARKER + b"\n")
            self._skipping = True
        else:
            self._partial = tail

    def _emit(self, complete: bytes) -> None:
        count = complete.count(b"\n")
        if count:
            self._sink(self.stream, count, complete.decode("utf-8", "replace"), time.time())

    def eof_received(self) -> bool:
        if self._partial and not self._skipping:
            self._emit(self._partial + b"\n")
        self._partial = b""
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self._partial:
            self.eof_received()
        if not self.closed.done():
            self.closed.set_result(None)
        if self._on_eof is not None:
            self._on_eof(self)

    def pause(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            try:
                self.transport.pause_reading()
            except RuntimeError:
                pass

    def resume(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            try:
                self.transport.resume_reading()
            except RuntimeError:
                pass
