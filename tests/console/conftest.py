"""Fixtures for console tests: the fake fleet with a frozen clock.

``tests/console`` goes on ``sys.path`` so tests import ``fake_client`` and
``console_helpers`` (unique module names) directly.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from console_helpers import frozen_clock
from fake_client import FakeFleetClient


@pytest.fixture
def client() -> FakeFleetClient:
    return FakeFleetClient(clock=frozen_clock)


@pytest.fixture(autouse=True)
def toasts_stay_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """Toasts expire on the wall clock (``Pausing …`` after 2 s), and Textual drops an
    expired one from ``app._notifications`` and from the screen. On a loaded machine more
    than that passed between a notification and the test reading it, or the snapshot
    taken of it. Tests check what the console said: here toasts stay up, as the clock is frozen."""
    from console.app import FleetConsole

    notify = FleetConsole.notify

    def notify_kept(self: FleetConsole, message: str, *, timeout: float | None = None, **kwargs: Any) -> None:
        notify(self, message, timeout=3600.0, **kwargs)

    monkeypatch.setattr(FleetConsole, "notify", notify_kept)
