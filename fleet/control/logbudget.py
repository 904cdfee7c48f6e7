"""How much log text one subscriber is pushed: a token bucket in bytes per second.

Why before encoding: under a flood the supervisor reads ~100 MB/s, and a console
draws at most a few dozen lines of it per frame. Each chunk is asked about first
(``LogBudget.take`` with its size in bytes), and only a chunk that fits is
decoded and encoded as JSON for that subscriber; the rest is counted and reported
as skipped (the store keeps every line). A subscriber may ask for less than the
fleet's cap (``subscribe`` with ``logs_max_rate``), never for more.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class LogBudget:
    """``rate`` bytes per second, up to ``burst`` at once.

    A chunk bigger than the whole burst passes when the bucket is full (and empties
    it below zero), so a small rate still shows a fast agent's big reads from time to
    time instead of none at all; over any window a subscriber gets at most
    ``burst + rate * seconds`` bytes plus one chunk.
    """

    rate: float
    burst: float
    #: Seconds from any fixed point (``time.monotonic`` when not given).
    clock: Callable[[], float] | None = None
    tokens: float = field(init=False)
    _at: float = field(init=False)

    def __post_init__(self) -> None:
        if not self.rate > 0 or not self.burst > 0:
            raise ValueError("a log budget needs a positive rate and burst")
        self.tokens = float(self.burst)
        self._at = self._now()

    def _now(self) -> float:
        return self.clock() if self.clock is not None else time.monotonic()

    def take(self, nbytes: int) -> bool:
        """Whether ``nbytes`` of log text may be pushed now (and spend them if so)."""
        now = self._now()
        self.tokens = min(float(self.burst), self.tokens + (now - self._at) * self.rate)
        self._at = now
        if nbytes <= self.tokens or self.tokens >= self.burst:
            self.tokens -= nbytes
            return True
        return False
