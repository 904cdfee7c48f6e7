"""Fleet Console: the Textual front end of a fleet (issue 6).

The console speaks to a fleet only through ``fleet.control.api.FleetClient``;
it never imports the supervisor, store or policy code, so the same screens
serve an embedded fleet and one running elsewhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fleet.control.api import FleetClient

__all__ = ["run"]


def run(client: FleetClient, *, embedded: bool, fleet_name: str = "fleet") -> None:
    """Run the console on ``client`` until the operator quits.

    Args:
        client: a connected (or lazily connecting) client, usable from the
            event loop the app creates.
        embedded: the fleet runs in this process; quitting offers to stop it.
        fleet_name: shown until the first status reply names the fleet.
    """
    from console.app import FleetConsole

    FleetConsole(client, embedded=embedded, fleet_name=fleet_name).run()
