"""Formatting that decides how often the fleet table repaints."""

from __future__ import annotations

import pytest

from console import format as fmt


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(None, "-"), (0, "<10s"), (9.9, "<10s"), (10, "10s"), (59.9, "50s"), (60, "1m"), (3599, "59m"), (3600, "1h00m"),
     (90000, "1d01h")],
)
def test_uptime_cell(seconds: float | None, shown: str) -> None:
    assert fmt.uptime(seconds) == shown


def test_uptime_cell_is_stable_within_a_minute() -> None:
    # An idle fleet's table must not change every second (each change repaints the row).
    assert len({fmt.uptime(s) for s in range(120, 180)}) == 1
    assert len({fmt.uptime(s) for s in range(0, 60)}) == 6
