"""The footer: the keys that apply now, on one line, drawn by one widget.

At 80 columns every cell counts for the keys that apply now; the ``^p palette``
hint shows from 100 columns on (ctrl+p always works and is listed in help).

Why not Textual's ``Footer``: it is a container of one widget per key, rebuilt
(mounted, styled, laid out) whenever the screen's bindings are refreshed —
every cursor move in the fleet table, every agent state change — and built
anew with every screen. Here the keys are one ``Text`` redrawn only when what
it shows changes: opening an agent's detail went from ~500 to ~400 ms here
without the footer's dozen widgets (``python -m bench.console_detail``). It
looks the same (the theme's ``$footer-*`` colours, compact spacing), and a
click on a key presses it, as with Textual's footer.
"""

from __future__ import annotations

from typing import Any

from rich.style import Style
from rich.text import Text
from textual import events
from textual.screen import Screen
from textual.widget import Widget

#: (key, what is shown for it, description, enabled)
_Item = tuple[str, str, str, bool]
_DIM = Style(dim=True)


class FleetFooter(Widget):
    """Key hints for the bindings of the screen it is on."""

    ALLOW_SELECT = False
    COMPONENT_CLASSES = {"fleet-footer--key", "fleet-footer--description"}
    DEFAULT_CSS = """
    FleetFooter {
        dock: bottom;
        height: 1;
        color: $footer-foreground;
        background: $footer-background;
        .fleet-footer--key {
            color: $footer-key-foreground;
            background: $footer-key-background;
            text-style: bold;
        }
        .fleet-footer--description {
            color: $footer-description-foreground;
            background: $footer-description-background;
        }
    }
    """

    def __init__(self) -> None:
        super().__init__()
        self._items: list[_Item] = []
        self._palette: _Item | None = None
        #: (start, end, key, enabled) of each key's cells in the last render, for clicks.
        self._spans: list[tuple[int, int, str, bool]] = []

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)
        self._bindings_changed(self.screen)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen: Screen[Any]) -> None:
        if not self.is_attached or screen is not self.screen:
            return
        items: list[_Item] = []
        actions: set[str] = set()
        palette: _Item | None = None
        for _node, binding, enabled, _tooltip in screen.active_bindings.values():
            if binding.key == self.app.COMMAND_PALETTE_BINDING and self.app.ENABLE_COMMAND_PALETTE:
                palette = (binding.key, self.app.get_key_display(binding), binding.description, enabled)
            if not binding.show or binding.action in actions:  # one hint per action, as Footer does
                continue
            actions.add(binding.action)
            items.append((binding.key, self.app.get_key_display(binding), binding.description, enabled))
        if (items, palette) != (self._items, self._palette):
            self._items, self._palette = items, palette
            self.refresh()

    def on_resize(self, event: events.Resize) -> None:
        self.refresh()

    def render(self) -> Text:
        key_style = self.get_component_rich_style("fleet-footer--key")
        desc_style = self.get_component_rich_style("fleet-footer--description")
        text = Text(no_wrap=True, overflow="crop", end="")
        spans: list[tuple[int, int, str, bool]] = []
        for key, shown, description, enabled in self._items:
            start = len(text)
            text.append(shown, key_style if enabled else key_style + _DIM)
            if description:
                text.append(" " + description, desc_style if enabled else desc_style + _DIM)
            spans.append((start, len(text), key, enabled))
            text.append(" ")
        width = self.size.width
        if self._palette is not None and width >= 100:
            key, shown, description, enabled = self._palette
            hint = Text.assemble(("▏", _DIM), (shown, key_style), (" " + description, desc_style))
            pad = width - len(text) - len(hint)
            if pad > 0:
                text.append(" " * pad)
                spans.append((len(text) + 1, len(text) + len(hint), key, enabled))
                text.append_text(hint)
        self._spans = spans
        return text

    def on_click(self, event: events.Click) -> None:
        for start, end, key, enabled in self._spans:
            if start <= event.x < end:
                if enabled:
                    self.app.simulate_key(key)
                else:
                    self.app.bell()
                return
