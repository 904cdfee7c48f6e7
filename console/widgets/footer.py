"""The footer: Textual's, compact, dropping the palette hint when narrow.

At 80 columns every cell counts for the keys that apply now; ctrl+p still
works and is listed in the help screen.

Textual's footer rebuilds all its keys (a dozen widgets, their styles) whenever
the screen's bindings are refreshed — every cursor move in the fleet table,
every state change of an agent. Most refreshes change nothing the footer shows,
so this one rebuilds only when the keys it would show, or their enabled state,
differ from what it shows (measured: ~10 ms a rebuild here, dozens per second
while the cursor moves or a fleet restarts).
"""

from __future__ import annotations

from typing import Any

from textual import events
from textual.screen import Screen
from textual.widgets import Footer


class FleetFooter(Footer):
    """Compact footer; the ``^p palette`` hint only from 100 columns on."""

    def __init__(self) -> None:
        super().__init__(compact=True)
        self._shown: Any = None

    def on_resize(self, event: events.Resize) -> None:
        wide = event.size.width >= 100
        if wide != self.show_command_palette:
            self.show_command_palette = wide

    def _signature(self, screen: Screen[Any]) -> Any:
        """What the keys would look like: key, label, enabled, per shown binding."""
        return (
            self.show_command_palette,
            tuple(
                (binding.key, binding.action, binding.description, enabled, tooltip)
                for (_node, binding, enabled, tooltip) in screen.active_bindings.values()
                if binding.show
            ),
        )

    def bindings_changed(self, screen: Screen[Any]) -> None:
        if self.is_attached and screen is self.screen and screen.app.app_focus:
            shown = self._signature(screen)
            if self._bindings_ready and shown == self._shown:
                return
            self._shown = shown
        super().bindings_changed(screen)
