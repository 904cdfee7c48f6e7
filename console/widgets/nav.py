"""Vi-style movement keys wherever arrows and page keys work.

Operators of k9s, lazygit and less move with ``j``/``k``, jump with
``g``/``G`` and page with ``ctrl+d``/``ctrl+u``. Textual's widgets bind only
the arrows and page keys; the same actions get these keys here, once, for
each kind of scrolling widget the console uses (a table, a list, a log).
"""

from __future__ import annotations

from typing import Any

from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, OptionList


def vi_keys(
    down: str, up: str, top: str, bottom: str, page_down: str = "page_down", page_up: str = "page_up"
) -> list[Binding]:
    """The six bindings, hidden from the footer (the help lists them)."""
    return [
        Binding("j", down, "Down", show=False),
        Binding("k", up, "Up", show=False),
        Binding("g", top, "First", show=False),
        Binding("G", bottom, "Last", show=False),
        Binding("ctrl+d", page_down, "Page down", show=False),
        Binding("ctrl+u", page_up, "Page up", show=False),
    ]


#: For tables (DataTable's cursor actions).
TABLE_KEYS = vi_keys("cursor_down", "cursor_up", "scroll_top", "scroll_bottom")
#: For option lists.
LIST_KEYS = vi_keys("cursor_down", "cursor_up", "first", "last")
#: For scrolled text (a log).
SCROLL_KEYS = vi_keys("scroll_down", "scroll_up", "scroll_home", "scroll_end")


class NavTable(DataTable[Any]):
    """A ``DataTable`` that also moves with j/k, g/G, ctrl+d/ctrl+u."""

    BINDINGS = TABLE_KEYS


class NavList(OptionList):
    """An ``OptionList`` that also moves with j/k, g/G, ctrl+d/ctrl+u."""

    BINDINGS = LIST_KEYS


class NavScroll(VerticalScroll):
    """A ``VerticalScroll`` that also scrolls with j/k, g/G, ctrl+d/ctrl+u."""

    BINDINGS = SCROLL_KEYS
