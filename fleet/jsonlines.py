"""Framing for the JSON-lines channels (control socket and agent fd 3).

Stdlib-only (the SDK uses it). A line is bounded: a peer that sends more than
``MAX_LINE`` bytes without a newline gets its line discarded and an error,
never an unbounded buffer in the supervisor.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_LINE = 16 * 1024 * 1024
#: Deepest nesting of arrays and objects a peer may send. ``json.loads`` recurses per
#: level: 100 000 levels raised ``RecursionError``, which is no ``ValueError`` and
#: closed the connection without a reply; a request nested a few hundred levels
#: would also reach the handlers and the store, which recurse too.
MAX_DEPTH = 128

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_BRACKET = re.compile(rb"[\[\]{}]")


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, default=str).encode() + b"\n"


def loads(raw: bytes | str, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` that refuses nesting deeper than ``max_depth`` with a ``ValueError``.

    Counting brackets is enough for almost every line; only a line with more
    brackets than ``max_depth`` is scanned (strings blanked out first), one step
    per bracket, never per byte.
    """
    data = raw.encode() if isinstance(raw, str) else raw
    if data.count(b"[") + data.count(b"{") > max_depth:
        depth = 0
        for m in _BRACKET.finditer(_STRING.sub(b"", data)):
            if m.group() in (b"[", b"{"):
                depth += 1
                if depth > max_depth:
                    raise ValueError(f"nested deeper than {max_depth} levels")
            else:
                depth -= 1
    try:
        return json.loads(data)
    except RecursionError:  # pragma: no cover - the scan above comes first
        raise ValueError(f"nested deeper than {max_depth} levels") from None


class LineBuffer:
    """Accumulates bytes and yields complete lines; oversize lines are skipped whole."""

    __slots__ = ("_buf", "_skipping", "max_line")

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self._buf = bytearray()
        self._skipping = False
        self.max_line = max_line

    @property
    def pending(self) -> int:
        """Bytes held of a line whose newline has not come yet."""
        return len(self._buf)

    def discard(self) -> None:
        """Drop the incomplete line held, and the rest of it when it comes."""
        if self._buf:
            self._buf.clear()
            self._skipping = True

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
