"""Fixtures for console tests: the fake fleet with a frozen clock.

``tests/console`` goes on ``sys.path`` so tests import ``fake_client`` and
``console_helpers`` (unique module names) directly.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from console_helpers import frozen_clock
from fake_client import FakeFleetClient


@pytest.fixture
def client() -> FakeFleetClient:
    return FakeFleetClient(clock=frozen_clock)
