"""The footer: Textual's, compact, dropping the palette hint when narrow.

At 80 columns every cell counts for the keys that apply now; ctrl+p still
works and is listed in the help screen.
"""

from __future__ import annotations

from textual import events
from textual.widgets import Footer


class FleetFooter(Footer):
    """Compact footer; the ``^p palette`` hint only from 100 columns on."""

    def __init__(self) -> None:
        super().__init__(compact=True)

    def on_resize(self, event: events.Resize) -> None:
        self.show_command_palette = event.size.width >= 100
