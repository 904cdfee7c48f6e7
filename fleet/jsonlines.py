"""Framing for the JSON-lines channels (control socket and agent fd 3).

Stdlib-only (the SDK uses it). A line is bounded: a peer that sends more than
``MAX_LINE`` bytes without a newline gets its line discarded and an error,
never an unbounded buffer in the supervisor.
"""

from __future__ import annotations

import json
from typing import Any

MAX_LINE = 16 * 1024 * 1024


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, default=str).encode() + b"\n"


class LineBuffer:
    """Accumulates bytes and yields complete lines; oversize lines are skipped whole."""

    __slots__ = ("_buf", "_skipping", "max_line")

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self._buf = bytearray()
        self._skipping = False
        self.max_line = max_line

    def feed(self, data: bytes) -> tuple[list[bytes], int]:
        """Add ``data``; return (complete lines, number of oversize lines dropped)."""
        lines: list[bytes] = []
        dropped = 0
        self._buf += data
        start = 0
        buf = self._buf
        while True:
            nl = buf.find(b"\n", start)
            if nl == -1:
                break
            if self._skipping:
                self._skipping = False
                dropped += 1
            else:
                lines.append(bytes(buf[start:nl]))
            start = nl + 1
        del buf[:start]
        if len(buf) > self.max_line:
            buf.clear()
            self._skipping = True
        return lines, dropped
