"""Helpers for console tests: a frozen clock and a bounded settling loop.

Tests never sleep: ``settle`` pumps the app (``pilot.pause``) until a
predicate holds, with a bound, and waits for the console's finite workers
(everything but the endless event subscription). A module of its own (not
conftest) so that test files can import it by a unique name.
"""

from __future__ import annotations

from collections.abc import Callable

from fake_client import BASE_TS
from textual.pilot import Pilot


def frozen_clock() -> float:
    return BASE_TS + 120.0


async def settle(pilot: Pilot[object], predicate: Callable[[], bool] | None = None, rounds: int = 200) -> None:
    """Pump the app until ``predicate()`` holds and finite workers are done."""
    app = pilot.app
    for _ in range(rounds):
        await pilot.pause()
        busy = [w for w in app.workers if w.group != "subscribe" and not w.is_finished]
        if busy:
            await app.workers.wait_for_complete(busy)
            continue
        if predicate is None or predicate():
            await pilot.pause()
            return
    raise AssertionError("condition not reached")
