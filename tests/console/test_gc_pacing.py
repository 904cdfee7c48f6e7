"""Full garbage collections are made between keys, never lost: ``console.gc_pacing``."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from fake_client import FakeFleetClient

from console import gc_pacing
from console.app import FleetConsole
from console.gc_pacing import GcPacer


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def young_collections(n: int) -> None:
    for _ in range(n):
        gc.collect(1)


@pytest.fixture
def pacer() -> Iterator[GcPacer]:
    saved = gc.get_threshold()
    pacer = GcPacer(clock=Clock())
    yield pacer
    pacer.stop()
    assert gc.get_threshold() == saved


def full_collections() -> int:
    return int(gc.get_stats()[2]["collections"])


def test_start_takes_full_collections_from_cpython_and_stop_gives_them_back(pacer: GcPacer) -> None:
    before = gc.get_threshold()
    pacer.start()
    young, middle, oldest = gc.get_threshold()
    assert (young, middle) == before[:2] and oldest > 10**6
    pacer.stop()
    assert gc.get_threshold() == before


def test_a_due_collection_waits_for_a_quiet_keyboard(pacer: GcPacer) -> None:
    clock = pacer.clock
    assert isinstance(clock, Clock)
    pacer.start()
    assert not pacer.tick()  # nothing due yet
    young_collections(gc_pacing.CADENCE)
    pacer.key()
    clock.now += gc_pacing.QUIET_S / 2
    full = full_collections()
    assert not pacer.tick() and full_collections() == full  # a key was just pressed
    clock.now += gc_pacing.QUIET_S
    assert pacer.tick() and full_collections() == full + 1
    assert not pacer.tick()  # and the count starts again


def test_keys_that_never_stop_still_get_a_collection_when_it_is_overdue(pacer: GcPacer) -> None:
    pacer.start()
    full = full_collections()
    for _ in range(gc_pacing.OVERDUE):
        young_collections(gc_pacing.CADENCE)
        pacer.key()
        if pacer.tick():
            break
    assert pacer.collections == 1 and full_collections() == full + 1


async def test_the_console_paces_collections_while_it_runs_and_restores_them_after() -> None:
    before = gc.get_threshold()
    client = FakeFleetClient()
    app = FleetConsole(client, embedded=False, fleet_name="demo")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert gc.get_threshold()[2] > 10**6
        await pilot.press("down")
        assert app._gc_pacer.last_key > 0
    assert gc.get_threshold() == before
    await client.close()
