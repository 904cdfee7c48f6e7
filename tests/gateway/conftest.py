"""Fixtures for the gateway tests: a stand-in policy and one shared litellm.

The stand-in policy lives in ``helpers.py`` (no ``fleet.policy`` import).
litellm takes ~4 s to import: the session-scoped ``litellm_loaded`` fixture
imports it once and tests that need it are marked ``litellm`` (deselect them
with ``-m "not litellm"`` for a sub-second run).
"""

from __future__ import annotations

from types import ModuleType

import pytest

from .helpers import Records


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "litellm: needs the real litellm import (shared, ~4 s once)")


@pytest.fixture
def records() -> Records:
    return Records()


@pytest.fixture(scope="session")
def litellm_loaded() -> ModuleType:
    """Import litellm once for the whole session, the way the gateway does."""
    from fleet.gateway.loader import load_litellm

    return load_litellm()
