"""Per-connection flow control: stop reading a peer that has too much pending.

A client of the control socket (or an agent on its fd 3) that sends requests
and never reads the replies used to grow the supervisor without bound: every
reply went into the transport's write buffer, which never refuses a write
(measured ~10 MB/s with ``status`` requests). Here each connection reads only
while it has fewer than ``max_inflight`` requests being handled and its unread
replies stay under the write buffer's high-water mark; past either, reading
stops (``pause_reading``) and the kernel's socket buffers push back on the
peer, as a pipe does on a chatty agent. Requests already read but not yet
started wait in a small queue, at most one read's worth.

So what one connection can make the supervisor hold is bounded by
``REPLY_HIGH_WATER`` + ``max_inflight`` replies + one read of requests.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

#: Unread replies a peer may leave in its transport before its requests stop being read.
REPLY_HIGH_WATER = 4 * 1024 * 1024
REPLY_LOW_WATER = 1024 * 1024
#: Requests of one peer handled at once; more wait (unparsed) until one finishes.
MAX_INFLIGHT = 64


class ReadGate:
    """Reading on or off for one transport, from its replies' backlog and its requests in flight.

    The protocol forwards its ``pause_writing``/``resume_writing`` callbacks here,
    hands over each complete line with ``offer`` and calls ``done`` when a request
    it started finishes. ``start(line)`` handles a line: it returns True when it
    started a request that will call ``done`` later, False when the line was
    dealt with at once (a one-way message, an error reply).
    """

    def __init__(self, start: Callable[[bytes], bool], max_inflight: int = MAX_INFLIGHT) -> None:
        self._start = start
        self.max_inflight = max_inflight
        self.inflight = 0
        self.waiting: deque[bytes] = deque()
        self.write_paused = False
        self.read_paused = False
        self.closed = False
        #: Held from outside (the store cannot keep up): read nothing until released.
        self.held = False
        self.transport: asyncio.Transport | None = None

    def attach(self, transport: asyncio.Transport, high: int = REPLY_HIGH_WATER, low: int = REPLY_LOW_WATER) -> None:
        self.transport = transport
        transport.set_write_buffer_limits(high=high, low=low)
        self._update()  # held before the transport came

    def offer(self, line: bytes) -> None:
        """A complete line: handled now if there is room, else kept (and reading paused) until there is."""
        self.waiting.append(line)
        self._drain()

    def done(self) -> None:
        """A request ``start`` began has finished (its reply is written or dropped)."""
        self.inflight -= 1
        self._drain()

    def close(self) -> None:
        """The connection is gone: forget what waits, start nothing more."""
        self.closed = True
        self.waiting.clear()

    def _drain(self) -> None:
        while self.waiting and self.inflight < self.max_inflight and not self.closed:
            line = self.waiting.popleft()
            self.inflight += 1
            if not self._start(line):
                self.inflight -= 1
        self._update()

    def hold(self, on: bool) -> None:
        """Stop (or resume) reading for a reason of the caller's (store backpressure)."""
        self.held = on
        self._update()

    def pause_writing(self) -> None:
        self.write_paused = True
        self._update()

    def resume_writing(self) -> None:
        self.write_paused = False
        self._update()

    def _update(self) -> None:
        t = self.transport
        if t is None or t.is_closing():
            return
        want = self.held or self.write_paused or bool(self.waiting) or self.inflight >= self.max_inflight
        if want and not self.read_paused:
            t.pause_reading()
            self.read_paused = True
        elif not want and self.read_paused:
            t.resume_reading()
            self.read_paused = False
