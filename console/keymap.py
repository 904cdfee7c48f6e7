"""The console's keys as data: the help screen and the palette's hints are made from the bindings.

Every key is declared once, as a ``Binding`` on the screen or widget where it
works (its ``description`` for the footer, its ``tooltip`` for the help);
this module reads those declarations, so the help cannot drift from what the
keys do. The app's own keys live here too, so the help can list them
without importing the app (the app imports this module, not the reverse).
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text
from textual.binding import Binding

from console.screens.agent import AgentScreen
from console.screens.approvals import ApprovalsScreen
from console.screens.fleet import FleetScreen
from console.screens.policy import PolicyScreen
from console.widgets.nav import TABLE_KEYS

#: Keys that work on every screen (``FleetConsole.BINDINGS``).
APP_BINDINGS = [
    Binding("a", "approvals", "Approvals", show=False, tooltip="approvals (y yes, n no)"),
    Binding("e", "edit_policy", "Policy", tooltip="policy editor"),
    Binding("question_mark", "help", "Help", tooltip="this help"),
    Binding("q", "quit", "Quit", tooltip="quit: detach, or stop the fleet (asks)"),
    Binding("ctrl+c", "quit", "Quit", show=False),  # as q: asks whether to detach or stop the fleet
    Binding("E", "events", "Events", show=False, tooltip="events: alerts, reloads…"),
    Binding("ctrl+p", "command_palette", "Palette", show=False, tooltip="command palette"),
]

_KEY_NAMES = {
    "question_mark": "?",
    "slash": "/",
    "backslash": "\\",
    "left_square_bracket": "[",
    "right_square_bracket": "]",
    "escape": "esc",
}


def key_display(binding: Binding) -> str:
    """How a key is written in the help and the palette: ``?``, ``/``, ``esc``, ``ctrl+d``."""
    return binding.key_display or _KEY_NAMES.get(binding.key, binding.key)


def key_for(action: str, bindings: Iterable[Binding] | None = None) -> str:
    """The key of the first binding that runs ``action`` (e.g. ``"all('pause')"`` -> ``P``), or ''."""
    for binding in bindings if bindings is not None else (*FleetScreen.BINDINGS, *APP_BINDINGS):
        if binding.action == action:
            return key_display(binding)
    return ""


def _explain(binding: Binding) -> str:
    return binding.tooltip or binding.description


def _entries(bindings: Iterable[Binding], skip: Iterable[str] = ()) -> list[tuple[str, str]]:
    """(keys, what) per action, keys of one action joined (``tab``/``shift+tab`` stay apart: two actions)."""
    skipped = set(skip)
    by_action: dict[str, tuple[list[str], str]] = {}
    for binding in bindings:
        if binding.action in skipped:
            continue
        keys, _what = by_action.setdefault(binding.action, ([], _explain(binding)))
        keys.append(key_display(binding))
    return [("/".join(keys), what) for keys, what in by_action.values()]


def _movement() -> list[tuple[str, str]]:
    """The vi keys, in pairs: ``j/k`` down/up and so on."""
    rows = []
    for a, b in zip(TABLE_KEYS[::2], TABLE_KEYS[1::2], strict=True):
        first, second = key_display(a), key_display(b)
        prefix = first.rpartition("+")[0]
        if prefix and second.startswith(prefix + "+"):
            second = second[len(prefix) + 1 :]  # ctrl+d/u
        rows.append((f"{first}/{second}", f"{a.description.lower()} / {b.description.lower()}"))
    return rows


def help_sections() -> list[tuple[str, list[tuple[str, str]]]]:
    """The help's sections: a title and its (keys, what) rows, all read from the bindings."""
    log_actions = {b.action for b in _log_bindings()}
    # ``answer`` is ``i`` in the footer while an agent waits: the help lists ``i`` once, as ``input``.
    fleet_keys = [b for b in FleetScreen.BINDINGS if b.action not in log_actions | {"answer"}]
    # The detail view has the fleet's agent keys (p r x s b M i) and the log keys; only its own are listed.
    detail_only = [b for b in AgentScreen.BINDINGS if b.action in ("back", "tab(-1)", "tab(1)")]
    return [
        ("Fleet table", _entries(fleet_keys)),
        ("Logs — the visible log pane, wherever the focus is", _entries(_log_bindings())),
        ("Moving — tables, lists and logs, as arrows, home/end, page keys", _movement()),
        ("Agent detail — also p r x s b M i and the log keys", _entries(detail_only)),
        ("Approvals", _entries(ApprovalsScreen.BINDINGS, skip={"app.pop_screen"})),
        ("Policy editor", _entries(PolicyScreen.BINDINGS)),
        ("Anywhere", _entries(APP_BINDINGS)),
    ]


def _log_bindings() -> list[Binding]:
    from console.screens.log_keys import LOG_BINDINGS

    return LOG_BINDINGS


def help_text(width: int = 74) -> Text:
    """The help as one text, each section's rows in two columns when they fit ``width``."""
    out = Text()
    column = width // 2
    for title, rows in help_sections():
        out.append(f"{title}\n", style="bold")
        cells = [_cell(keys, what) for keys, what in rows]
        i = 0
        while i < len(cells):  # two to a line while both fit their half
            cell = cells[i]
            after = cells[i + 1] if i + 1 < len(cells) else None
            if after is not None and cell.cell_len < column and after.cell_len <= column:
                cell.pad_right(column - cell.cell_len)
                cell.append_text(after)
                i += 1
            out.append_text(cell)
            out.append("\n")
            i += 1
    out.rstrip()
    return out


def _cell(keys: str, what: str) -> Text:
    text = Text(f" {keys:<8} ", style="bold")
    text.append(what)
    return text
