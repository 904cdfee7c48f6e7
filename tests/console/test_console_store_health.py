"""The console's header says when the store cannot write (disk full...), and when it can again."""

from __future__ import annotations

from console_helpers import frozen_clock, settle
from fake_client import FakeFleetClient

from console.app import FleetConsole


async def test_header_shows_a_failing_store_until_it_recovers() -> None:
    client = FakeFleetClient(clock=frozen_clock)
    app = FleetConsole(client, embedded=True, fleet_name="demo", clock=frozen_clock)
    async with app.run_test(size=(200, 48)) as pilot:
        await settle(pilot, lambda: app.fleet_screen.table.row_count == len(app.agents) > 0)
        info = app.fleet_screen.query_one("#fleet-info")
        assert "store" not in str(info.render())
        client.push("store", {"ok": False, "error": "disk full (ENOSPC)", "since": 1.0,
                              "message": "store writes failing: disk full (ENOSPC); log pipes paused, retrying"})
        await settle(pilot, lambda: "⚠ store: disk full (ENOSPC) (logs paused)" in str(info.render()))
        assert any("store writes failing" in str(n.message) for n in app._notifications)
        client.push("store", {"ok": True, "error": None, "message": "store writes resumed"})
        await settle(pilot, lambda: "store" not in str(info.render()))
