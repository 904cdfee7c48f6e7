"""Reading an agent's stdout/stderr: whole chunks, complete lines, bounded lines.

Each pipe is read with ``os.read`` (up to 256 KiB a read), registered with
``loop.add_reader`` rather than through an asyncio transport, which joined
every read to the previous read's partial line and sliced it at its last
newline: two copies of every byte before anything was done with it (~10 % of
the supervisor's CPU under a flood). Here the kernel copies a read into a new
``bytes`` and that is the only copy: the complete lines go on as a memoryview
of it (to the store's ``pwritev``), and only the one line that spans two reads
is joined. Nothing is decoded here: the store keeps the bytes as written and
only what a person or a search looks at is decoded.

Lines are counted with two of StringZilla's SIMD passes (``count_lines``):
``bytes.count`` is a byte-at-a-time loop in CPython 3.11 and was a fifth of
the supervisor's CPU under a flood (perf). Only a chunk big enough to
hide an over-long line is split into lines to enforce the 64 KiB cap. The
supervisor can ``pause`` a pipe: the agent then blocks on write, as it would
under a slow terminal, instead of the supervisor dropping lines or buffering
without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import Callable

try:  # SIMD byte counting; the pure-Python fallback gives the same numbers.
    from stringzilla import bytesum as _sz_bytesum
    from stringzilla import translate as _sz_translate
except ImportError:  # pragma: no cover - stringzilla is a dependency; kept for odd platforms
    _sz_translate = None

MAX_LINE = 64 * 1024
CUT_MARKER = b" [\xe2\x80\xa6 line cut at 64 KiB]"
#: Bytes taken from the pipe per read (what asyncio's pipe transport reads too).
READ_SIZE = 256 * 1024

#: ``sink(stream, count, data, ts)``; data holds ``count`` lines, each ending in b"\n"
#: (a view of the read: keep it, don't write into it).
Sink = Callable[[str, int, bytes | memoryview, float], None]


#: Byte -> 1 for a newline, 0 for anything else.
_NEWLINE_LUT = bytes(int(i == 10) for i in range(256))
_scratch = threading.local()


def count_lines(data: bytes | bytearray | memoryview) -> int:
    """Number of ``\\n`` in ``data``.

    Mapped through a lookup table to 1s and 0s, then summed: two SIMD passes
    (~0.06 ns/byte here) where StringZilla's ``count`` finds one newline after
    the other (~0.15 ns/byte with 100-byte lines) and ``bytes.count`` steps
    byte by byte (~0.4 ns/byte).
    """
    n = len(data)
    if _sz_translate is None or n < 64:
        return (data if isinstance(data, bytes | bytearray) else bytes(data)).count(b"\n")
    buf = getattr(_scratch, "buf", None)
    if buf is None or len(buf) < n:
        buf = _scratch.buf = bytearray(max(n, READ_SIZE + MAX_LINE))
    out = memoryview(buf)[:n]
    _sz_translate(data, _NEWLINE_LUT, out=out)
    return int(_sz_bytesum(out))


def has_long_line(
    data: bytes | bytearray, limit: int = MAX_LINE, start: int = 0, end: int | None = None
) -> bool:
    """Whether any line in ``data[start:end]`` is longer than ``limit``, without splitting it.

    Jumps to the last newline within the next ``limit + 1`` bytes: a few C-level
    ``rfind`` calls per 256 KiB read instead of one Python step per line.
    """
    pos, end = start, len(data) if end is None else end
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


class LogPipe:
    """Reader of one pipe (stdout or stderr of one process run).

    ``start(fd)`` takes ownership of ``fd`` and reads it on the running loop until
    EOF; then the pending partial line is emitted, the fd closed, ``closed``
    resolved and ``on_eof(self)`` called. ``feed`` runs the same line handling on
    bytes given directly (tests).
    """

    def __init__(self, stream: str, sink: Sink, on_eof: Callable[[LogPipe], None] | None = None) -> None:
        self.stream = stream
        self._sink = sink
        self._on_eof = on_eof
        self._partial = b""  # the start of a line whose newline has not come yet (<= MAX_LINE)
        self._skipping = False  # inside an over-long line whose head was already emitted
        self._fd = -1
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reading = False
        self._paused = False
        self._closed: asyncio.Future[None] | None = None
        self._done = False
        self.bytes_read = 0
        #: Called with every read as it came (a tty agent's attached terminals), before line handling.
        self.tap: Callable[[bytes], None] | None = None
        #: A terminal's lines end in CR LF: logged as LF (the tap still sees CR LF).
        self.crlf = False

    @property
    def closed(self) -> asyncio.Future[None]:
        """Resolved once the pipe reached EOF (or was closed) and everything read was emitted."""
        if self._closed is None:
            self._closed = asyncio.get_running_loop().create_future()
            if self._done:
                self._closed.set_result(None)
        return self._closed

    # ------------------------------------------------------------ reading the fd

    def start(self, fd: int) -> None:
        """Read ``fd`` (now owned by this pipe) on the running loop."""
        self._fd = fd
        os.set_blocking(fd, False)
        self._loop = asyncio.get_running_loop()
        if not self._paused:
            self._add_reader()

    def _add_reader(self) -> None:
        if self._loop is not None and self._fd >= 0 and not self._reading:
            self._loop.add_reader(self._fd, self._on_readable)
            self._reading = True

    def _remove_reader(self) -> None:
        if self._reading and self._loop is not None:
            self._loop.remove_reader(self._fd)
            self._reading = False

    def _on_readable(self) -> None:
        try:
            data = os.read(self._fd, READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # EIO and the like: the writer is gone for good
            data = b""
        if not data:
            self._close()
            return
        self.bytes_read += len(data)
        if self.tap is not None:
            self.tap(data)
        if self.crlf:
            data = data.replace(b"\r\n", b"\n")
        self._consume(data)

    def _close(self) -> None:
        self._remove_reader()
        self._flush_partial()
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1
        self._done = True
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)
        if self._on_eof is not None:
            self._on_eof(self)

    def pause(self) -> None:
        self._paused = True
        self._remove_reader()

    def resume(self) -> None:
        self._paused = False
        self._add_reader()

    # ------------------------------------------------------------ line handling

    def feed(self, data: bytes) -> None:
        """Handle ``data`` as if it had been read from the pipe (in reads of at most ``READ_SIZE``)."""
        for pos in range(0, len(data), READ_SIZE):
            part = data[pos : pos + READ_SIZE]
            self.bytes_read += len(part)
            self._consume(part)

    def eof(self) -> None:
        """The writer closed its end (tests; ``start`` detects it by itself)."""
        self._flush_partial()

    def _consume(self, data: bytes) -> None:
        """Emit the complete lines of one read: the line the last read left open, then the rest.

        The rest goes out as a view of ``data``, not a copy; only the one line that
        spans two reads is joined.
        """
        start = 0
        if self._skipping or self._partial:
            nl = data.find(b"\n")
            if nl == -1:
                if not self._skipping:
                    self._hold(self._partial + data)
                return
            if self._skipping:  # drop the remainder of a line already emitted cut
                self._skipping = False
            else:
                self._emit(_cap(self._partial + data[: nl + 1]))
                self._partial = b""
            start = nl + 1
        last = data.rfind(b"\n", start)
        if last == -1:
            self._hold(data[start:])
            return
        if last + 1 - start > MAX_LINE and has_long_line(data, MAX_LINE, start, last + 1):
            self._emit(cap_lines(data[start : last + 1])[0])
        elif start == 0 and last + 1 == len(data):
            self._emit(data)
        else:
            self._emit(memoryview(data)[start : last + 1])
        if last + 1 < len(data):
            self._hold(data[last + 1 :])

    def _hold(self, tail: bytes) -> None:
        """Keep ``tail`` (a line without its newline yet) for the next read, or cut it if too long."""
        if len(tail) > MAX_LINE:
            self._emit(tail[:MAX_LINE] + CUT_MARKER + b"\n")
            self._skipping = True
            self._partial = b""
        else:
            self._partial = tail

    @property
    def has_partial(self) -> bool:
        """Whether a line is waiting for its newline."""
        return bool(self._partial) and not self._skipping

    def flush_partial(self) -> None:
        """Emit the line still waiting for its newline as a line now (a prompt the agent waits on)."""
        self._flush_partial()

    def _flush_partial(self) -> None:
        if self._partial and not self._skipping:
            self._emit(self._partial + b"\n")
        self._partial = b""

    def _emit(self, complete: bytes | memoryview) -> None:
        count = count_lines(complete)
        if count:
            self._sink(self.stream, count, complete, time.time())


def _cap(line: bytes) -> bytes:
    """``line`` (one line, newline included) cut at ``MAX_LINE`` with the marker if longer."""
    if len(line) <= MAX_LINE + 1:
        return line
    return line[:MAX_LINE] + CUT_MARKER + b"\n"
