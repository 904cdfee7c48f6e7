"""Full garbage collections while the operator reads, not while a key is answered.

Why: the console holds a few hundred thousand objects (Textual's DOM and
styles, log rows, rendered strips). CPython's oldest-generation collection walks
all of them: 45-55 ms on the bench machine, at a moment chosen by allocation
counts. Under a log flood that moment is often a key press, and it was the
slowest key → screen sample of a run. Here the automatic full collection is
switched off and the same collections are made by a timer, once as many younger
collections have passed as would have triggered one (CPython's default cadence)
and no key has come for ``QUIET_S``. If keys never stop, one is made anyway at
``OVERDUE`` times the cadence, so memory held by cycles stays bounded.

Young collections (generations 0 and 1) keep their thresholds: they are short.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass, field

#: Quiet time after a key before a full collection may run (s).
QUIET_S = 1.0
#: A full collection is due after this many generation-1 collections (CPython's own threshold).
CADENCE = 10
#: Made even while keys keep coming, at this many cadences.
OVERDUE = 10
#: Threshold that keeps CPython from starting full collections on its own.
_NEVER = 1 << 30


def _gen1_collections() -> int:
    return int(gc.get_stats()[1]["collections"])


@dataclass
class GcPacer:
    """Owns the interpreter's full collections while the console runs (``start`` / ``stop``)."""

    clock: Callable[[], float] = time.monotonic
    last_key: float = 0.0
    _mark: int = 0
    _saved: tuple[int, int, int] | None = field(default=None, repr=False)
    collections: int = 0

    def start(self) -> None:
        if self._saved is None:
            self._saved = gc.get_threshold()
            young, middle, _ = self._saved
            gc.set_threshold(young, middle, _NEVER)
        self._mark = _gen1_collections()

    def stop(self) -> None:
        if self._saved is not None:
            gc.set_threshold(*self._saved)
            self._saved = None

    def key(self) -> None:
        """A key came in: hold full collections back for ``QUIET_S``."""
        self.last_key = self.clock()

    def tick(self) -> bool:
        """Make the full collection if one is due and the keyboard is quiet (or it is overdue)."""
        if self._saved is None:
            return False
        since = _gen1_collections() - self._mark
        quiet = self.clock() - self.last_key >= QUIET_S
        if since >= CADENCE * OVERDUE or (since >= CADENCE and quiet):
            gc.collect()
            self._mark = _gen1_collections()
            self.collections += 1
            return True
        return False
