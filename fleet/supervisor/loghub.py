"""Where every log chunk goes: line numbers, a bounded ring, the store, subscribers.

One ``LogHub`` per supervisor. It numbers lines per agent instance (numbers
continue across runs and restarts of the supervisor, taken from the store),
keeps a small ring of recent chunks per instance for ``last_line`` and fast
tails, hands each chunk to the store in O(1) and fans it out to subscribers
(the console). When the store reports pressure, every registered pipe stops
being read until the writer catches up: backpressure, never loss.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Protocol

from fleet.records import LogChunk, LogLine
from fleet.supervisor.logpipe import LogPipe

RING_BYTES = 256 * 1024
#: Streams that are not the agent's own output: the supervisor's notes, the operator's input.
NOT_OUTPUT = frozenset({"fleet", "input"})

try:
    from stringzilla import rfind as _sz_rfind
except ImportError:  # pragma: no cover - stringzilla is a dependency
    _sz_rfind = None


def _rfind_newline(data: bytes | memoryview, end: int) -> int:
    """``data.rfind(b"\\n", 0, end)``, also for a memoryview (which has no ``rfind``)."""
    if isinstance(data, bytes):
        return data.rfind(b"\n", 0, end)
    if _sz_rfind is not None:
        return int(_sz_rfind(data, b"\n", 0, end))
    return bytes(data).rfind(b"\n", 0, end)  # pragma: no cover


class Pausable(Protocol):
    """What backpressure stops reading: a log pipe, or an SDK agent's channel (its ``sdk`` log lines)."""

    def pause(self) -> None: ...

    def resume(self) -> None: ...


class LogStore(Protocol):
    def append_logs(self, chunks: list[LogChunk]) -> None: ...

    @property
    def pressure(self) -> bool: ...


class _Ring:
    __slots__ = ("bytes", "chunks", "last_line")

    def __init__(self) -> None:
        self.chunks: deque[LogChunk] = deque()
        self.bytes = 0
        self.last_line = ""

    def add(self, chunk: LogChunk) -> None:
        self.chunks.append(chunk)
        data = chunk.data
        self.bytes += len(data)
        while self.bytes > RING_BYTES and len(self.chunks) > 1:
            self.bytes -= len(self.chunks.popleft().data)
        if chunk.stream not in NOT_OUTPUT:
            end = len(data) - 1
            start = _rfind_newline(data, end) + 1
            # Its first 300 characters: at most 1200 bytes of UTF-8.
            self.last_line = str(data[start : min(end, start + 1200)], "utf-8", "replace")[:300]


class LogHub:
    """Numbering, rings and fan-out of log chunks."""

    def __init__(self, store: LogStore | None) -> None:
        self._store = store
        self._seq: dict[str, int] = {}
        self._rings: dict[str, _Ring] = {}
        self._pipes: set[LogPipe | Pausable] = set()
        self._subscribers: list[Callable[[LogChunk], None]] = []
        self.paused = False
        #: Shutting down: pipes are read to the end whatever the store's pressure, so
        #: what the store cannot take any more is counted rather than left in the pipes.
        self.draining = False
        self.lines_in = 0
        #: Wall time of each agent's latest output line (for "stalled" alerts).
        self.last_output: dict[str, float] = {}
        #: Applied to every chunk before it is kept, stored or shown: secrets never reach logs.
        self.redact: Callable[[bytes | memoryview], bytes | memoryview] | None = None

    def seed(self, max_seqs: dict[str, int]) -> None:
        """Continue numbering after what the store already holds."""
        for agent, seq in max_seqs.items():
            self._seq[agent] = max(self._seq.get(agent, 0), seq)

    def subscribe(self, fn: Callable[[LogChunk], None]) -> Callable[[], None]:
        self._subscribers.append(fn)
        return lambda: self._subscribers.remove(fn) if fn in self._subscribers else None

    def sink_for(self, agent: str, run_id: int) -> Callable[[str, int, bytes | memoryview, float], None]:
        """The callback a ``LogPipe`` of this agent run feeds."""

        def sink(stream: str, count: int, data: bytes | memoryview, ts: float) -> None:
            self.add(agent, run_id, stream, count, data, ts)

        return sink

    def add(
        self, agent: str, run_id: int, stream: str, count: int, data: bytes | memoryview | str, ts: float
    ) -> LogChunk:
        """Number, keep, store and fan out ``count`` lines (``data`` ends with a newline)."""
        if isinstance(data, str):
            data = data.encode("utf-8", "replace")
        if self.redact is not None:
            data = self.redact(data)
        first = self._seq.get(agent, 0) + 1
        self._seq[agent] = first + count - 1
        chunk = LogChunk(agent, run_id, stream, first, count, ts, data)
        self.lines_in += count
        if stream not in NOT_OUTPUT:
            self.last_output[agent] = ts
        ring = self._rings.get(agent)
        if ring is None:
            ring = self._rings[agent] = _Ring()
        ring.add(chunk)
        if self._store is not None:
            self._store.append_logs([chunk])
            if self._store.pressure and not self.paused and not self.draining:
                self.set_pressure(True)
        for fn in self._subscribers:
            fn(chunk)
        return chunk

    # --- backpressure ----------------------------------------------------------
    def register(self, pipe: LogPipe | Pausable) -> None:
        self._pipes.add(pipe)
        if self.paused:
            pipe.pause()

    def unregister(self, pipe: LogPipe | Pausable) -> None:
        self._pipes.discard(pipe)

    def drain(self) -> None:
        """Read every pipe to its end from now on, whatever the store's pressure (shutdown)."""
        self.draining = True
        self.set_pressure(False)

    def set_pressure(self, on: bool) -> None:
        if on and self.draining:
            return
        if on == self.paused:
            return
        self.paused = on
        for pipe in list(self._pipes):
            if on:
                pipe.pause()
            else:
                pipe.resume()

    # --- reading back -------------------------------------------------------------
    def last_line(self, agent: str) -> str:
        ring = self._rings.get(agent)
        return ring.last_line if ring else ""

    def last_seq(self, agent: str) -> int:
        return self._seq.get(agent, 0)

    def recent(self, agent: str, after_seq: int = 0) -> list[LogLine]:
        """Lines still in the ring numbered above ``after_seq``."""
        ring = self._rings.get(agent)
        out: list[LogLine] = []
        if not ring:
            return out
        for c in ring.chunks:
            if c.first_seq + c.count - 1 <= after_seq:
                continue
            for i, text in enumerate(c.lines()):
                seq = c.first_seq + i
                if seq > after_seq:
                    out.append(LogLine(c.agent, seq, c.ts, c.stream, text, c.run_id))
        return out
