"""A fast log view: Textual's ``Log`` plus colour, search marks, wrap and filters.

Why a ``Log`` subclass and not ``RichLog``: ``Log`` keeps plain strings and
renders only the rows on screen, so 100k lines/s of ingestion cost a list
extend per paint tick. We store each display row as a sanitised string that
still holds its SGR colour sequences (``fleet.ansi.sanitize``) and decode it
with ``Text.from_ansi`` only when the row is painted (LRU cached).

Ingest and render are decoupled (house style §7): the ``LogRings`` queues new
blocks with ``queue_blocks``; a timer started by the first of them drains
them all 1/15 s later with one ``write_lines`` (no timer runs while no lines
come in: an idle console must not wake 15 times a second). A detached (hidden) view queues nothing and replays
its ring when shown again. Wrap, timestamps and filters rebuild the rows from
the ring; search only changes how visible rows are painted.
"""

from __future__ import annotations

import re
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.cells import cell_len, get_character_cell_size
from rich.style import Style
from rich.text import Text
from textual import events
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.reactive import var
from textual.strip import Strip
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Log

from console.logring import MERGED, Block, LogRing, LogRings
from console.widgets.nav import SCROLL_KEYS
from fleet.ansi import strip_sgr

if TYPE_CHECKING:
    from typing import Self

#: How long new lines gather before one paint.
DRAIN_S = 1 / 15
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_LEVEL_RANK = {name: rank for rank, name in enumerate(LEVELS)}
_LEVEL_RANK.update({"WARN": 2, "FATAL": 4})
_LEVEL_WORD = re.compile(r"\b(DEBUG|INFO|WARN|WARNING|ERROR|CRITICAL|FATAL)\b")
_SGR_SPLIT = re.compile(r"(\x1b\[[0-9;:]*m)")
_LEVEL_SGR = {"DEBUG": "2", "INFO": "34", "WARNING": "33", "WARN": "33", "ERROR": "31", "CRITICAL": "1;31"}
_AGENT_SGR = ("36", "35", "32", "33", "34", "96", "95", "92")


@dataclass(frozen=True, slots=True)
class LogFilter:
    """Which lines a view shows: streams (None = all), minimum level, text."""

    streams: frozenset[str] | None = None
    level: str | None = None
    text: str = ""

    @property
    def active(self) -> bool:
        return self.streams is not None or self.level is not None or bool(self.text)

    def describe(self) -> str:
        parts = []
        if self.streams is not None:
            parts.append("stream=" + ",".join(sorted(self.streams)))
        if self.level is not None:
            parts.append(f"level≥{self.level.lower()}")
        if self.text:
            parts.append(f"text={self.text!r}")
        return " ".join(parts)


def line_level(stream: str, plain: str) -> int:
    """Rank of a line's level: sdk lines start with it, others may mention it."""
    match = _LEVEL_WORD.search(plain, 0, 60)
    if match is None:
        return 1
    return _LEVEL_RANK[match.group(1)]


def wrap_ansi(line: str, width: int) -> list[str]:
    """Cut a row holding SGR sequences into rows of at most ``width`` cells.

    Active SGR sequences are re-emitted at the start of each continuation row
    so colours survive the cut (every row is decoded on its own).
    """
    if width < 4 or cell_len(strip_sgr(line)) <= width:
        return [line]
    rows: list[str] = []
    active: list[str] = []
    current: list[str] = []
    used = 0
    for part in _SGR_SPLIT.split(line):
        if not part:
            continue
        if part.startswith("\x1b["):
            current.append(part)
            if part in ("\x1b[0m", "\x1b[m"):
                active.clear()
            else:
                active.append(part)
            continue
        for char in part:
            size = get_character_cell_size(char)
            if used + size > width:
                rows.append("".join(current))
                current = [*active]
                used = 0
            current.append(char)
            used += size
    if current:
        rows.append("".join(current))
    return rows


def agent_colour(agent: str) -> str:
    return _AGENT_SGR[zlib.crc32(agent.encode()) % len(_AGENT_SGR)]


class LogView(Log, inherit_bindings=True):
    """The rows of one log source (an agent or ``MERGED``), painted in colour."""

    BINDINGS = SCROLL_KEYS

    DEFAULT_CSS = """
    LogView {
        scrollbar-size-vertical: 1;
    }
    """

    class UserScrolled(Message):
        """The operator scrolled; the pane decides about follow and history."""

        def __init__(self, up: bool, at_top: bool, at_end: bool) -> None:
            super().__init__()
            self.up = up
            self.at_top = at_top
            self.at_end = at_end

    follow: var[bool] = var(True)
    wrap: var[bool] = var(False)
    timestamps: var[bool] = var(False)
    search: var[str] = var("")
    filter: var[LogFilter] = var(LogFilter())

    def __init__(self, hub: LogRings, source: str, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(max_lines=hub.max_lines, auto_scroll=True, id=id, classes=classes)
        self.hub = hub
        self.source = source
        self.active = False
        self._pending: list[Block] = []
        self._drain_timer: Timer | None = None
        self._strips: LRUCache[tuple[str, str, bool], Strip] = LRUCache(2048)
        self._built_width = 0
        self.current_match: int | None = None
        #: The last ``find`` went past the last line to the first (or back past the first).
        self.wrapped = False
        self.painted_lines = 0
        self._rebuilding = False
        self._longest_raw = 0
        #: The newest ring block in the rows, and the ring's epoch when they were built (``_catch_up``).
        self._last_block: Block | None = None
        self._ring_epoch = -1
        self._built_as: tuple[object, ...] = ()

    # -- feeding ---------------------------------------------------------------

    @property
    def ring(self) -> LogRing:
        return self.hub.ring(self.source)

    def queue_blocks(self, blocks: Iterable[Block]) -> None:
        self._pending.extend(blocks)
        if self._drain_timer is None and self._pending:
            # One paint per 1/15 s while lines come in; no timer at all while none do.
            self._drain_timer = self.set_timer(DRAIN_S, self._drain_due, name="log-drain")

    def _drain_due(self) -> None:
        self._drain_timer = None
        self._drain()

    def set_active(self, active: bool) -> None:
        """Attach to the hub and replay the ring, or detach and stop painting."""
        if active == self.active:
            return
        self.active = active
        if active:
            self.hub.attach(self.source, self)
            if not self._catch_up():
                self.rebuild()
        else:
            self.hub.detach(self.source, self)
            self._pending.clear()
            if self._drain_timer is not None:
                self._drain_timer.stop()
                self._drain_timer = None

    def set_source(self, source: str) -> None:
        if source == self.source:
            return
        if self.active:
            self.hub.detach(self.source, self)
        self.source = source
        self.current_match = None
        if self.active:
            self.hub.attach(source, self)
            self.rebuild()

    def _catch_up(self) -> bool:
        """Shown again: append only what the ring got while hidden, if the rows built before still hold.

        A rebuild replays the whole ring (up to 10 000 rows sanitised, measured
        and written): most of the time of going back to a screen under a flood.
        The rows still hold when the ring only grew at its end since the last
        block shown (no history inserted, no clear) and the view still shows what
        the rows were built for (``_shape``).
        """
        ring = self.ring
        last = self._last_block
        if last is None or ring.epoch != self._ring_epoch or self._built_as != self._shape():
            return False
        newer = ring.since(last)
        if newer is None:  # the ring moved past it while hidden
            return False
        self._pending.extend(newer)
        self._drain()  # now, not after a drain period: the screen is being shown
        return True

    def _shape(self) -> tuple[object, ...]:
        """What the rows were built for: another source, filter, time stamps or wrap width needs new rows.

        (The merged ring and an agent's share their blocks, so the last block shown
        is found in either: the source must be compared too.)
        """
        return (self.source, self.filter, self.timestamps, self._wrap_width() if self.wrap else 0)

    def _drain(self) -> None:
        if not self._pending:
            return
        blocks, self._pending = self._pending, []
        self._last_block = blocks[-1]
        rows = self._rows(blocks)
        if rows:
            self.painted_lines += len(rows)
            self.write_lines(rows, scroll_end=self.follow)

    def rebuild(self, *, keep_offset: int | None = None) -> None:
        """Rebuild every row from the ring (wrap, timestamps, filter, source change).

        ``keep_offset``: rows added in front (history); the viewport stays on
        the same lines instead of jumping.
        """
        self._pending.clear()
        self._rebuilding = True
        self.call_after_refresh(setattr, self, "_rebuilding", False)
        old_y = self.scroll_y
        ring = self.ring
        self._last_block = ring.blocks[-1] if ring.blocks else None
        self._ring_epoch = ring.epoch
        self._built_as = self._shape()
        rows = self._rows(ring)
        self._built_width = self._wrap_width()
        self.clear()
        self._longest_raw = 0
        self._strips.clear()
        self.write_lines(rows, scroll_end=False)
        if self.follow:
            self.scroll_end(animate=False, x_axis=False)
        elif keep_offset is not None:
            self.call_after_refresh(self.scroll_to, y=old_y + keep_offset, animate=False)

    # -- building rows ---------------------------------------------------------

    def _wrap_width(self) -> int:
        return max(10, self.scrollable_content_region.width)

    def _rows(self, blocks: Iterable[Block]) -> list[str]:
        flt = self.filter
        merged = self.source == MERGED
        stamps = self.timestamps
        wrap_width = self._wrap_width() if self.wrap else 0
        level_min = _LEVEL_RANK[flt.level] if flt.level else None
        needle = flt.text.casefold()
        pad = min(24, max((len(name) for name in self.hub.rings), default=0)) if merged else 0
        out: list[str] = []
        for block in blocks:
            if flt.streams is not None and block.stream not in flt.streams:
                continue
            prefix = ""
            if stamps:
                prefix += "\x1b[2m" + time.strftime("%H:%M:%S", time.localtime(block.ts)) + "\x1b[0m "
            if merged:
                prefix += f"\x1b[{agent_colour(block.agent)}m{block.agent:<{pad}}\x1b[0m\x1b[2m│\x1b[0m "
            stream = block.stream
            if stream == "stderr":
                prefix += "\x1b[31m▌\x1b[0m"
            elif stream == "fleet":
                prefix += "\x1b[2;3m· "
            lines = block.lines
            if level_min is not None or needle:
                kept = []
                for line in lines:
                    plain = strip_sgr(line)
                    if level_min is not None and line_level(stream, plain) < level_min:
                        continue
                    if needle and needle not in plain.casefold():
                        continue
                    kept.append(line)
                lines = kept
            if stream == "sdk":
                lines = [self._colour_level(line) for line in lines]
            if prefix:
                lines = [prefix + line for line in lines]
            if block.has_tab:
                lines = [line.expandtabs() for line in lines]
            if wrap_width:
                for line in lines:
                    out.extend(wrap_ansi(line, wrap_width))
            else:
                out.extend(lines)
        return out

    @staticmethod
    def _colour_level(line: str) -> str:
        level, sep, rest = line.partition(" ")
        sgr = _LEVEL_SGR.get(level)
        if sgr is None:
            return line
        return f"\x1b[{sgr}m{level}\x1b[0m{sep}{rest}"

    # -- writing (Log's own, minus per-line work) ----------------------------------

    def _grow(self, size: Size) -> None:
        """Take the new virtual size, without a layout of the screen when only the height grew.

        ``virtual_size`` is a layout reactive: each change lays out the whole screen
        and repaints every widget on it (the fleet table too), and under a flood
        the rows grow at every paint — a third of the console's CPU. Once the
        vertical scrollbar is shown and the width is unchanged, more rows change
        nothing but the scrollbar's thumb, so only that is updated.
        """
        old = self.virtual_size
        if size == old:
            return
        shown = self.show_vertical_scrollbar and old.height > self.scrollable_content_region.height
        if shown and size.width == old.width and size.height > old.height:
            self.set_reactive(Widget.virtual_size, size)
            self._scroll_update(size)
        else:
            self.virtual_size = size

    def write_lines(self, lines: Iterable[str], scroll_end: bool | None = None) -> Self:
        """Append rows (no newlines inside: ``_rows`` guarantees it).

        ``Log.write_lines`` splits every row again, discards a cache entry
        per row and measures every row's width in a thread; at 100k lines/s
        that was most of the console's time. Here the width is measured only
        for rows longer than the widest so far.
        """
        is_end = self.is_vertical_scroll_end
        auto_scroll = self.auto_scroll if scroll_end is None else scroll_end
        new_lines = lines if isinstance(lines, list) else list(lines)
        self._lines.extend(new_lines)
        removed = 0
        if self.max_lines is not None and len(self._lines) > self.max_lines:
            removed = len(self._lines) - self.max_lines
            del self._lines[:removed]
            self.current_match = None
        # Measure only rows longer (in code points, SGR included) than any
        # measured before: a cheap bound that skips almost every row.
        longest = self._longest_raw
        wider = [line for line in new_lines if len(line) > longest]
        if wider:
            self._longest_raw = max(map(len, wider))
            self._width = max(self._width, *(cell_len(self._process_line(line)) for line in wider))
        self._grow(Size(self._width, len(self._lines)))
        if auto_scroll and is_end and not self.is_vertical_scrollbar_grabbed:
            self.scroll_end(animate=False, immediate=True, x_axis=False)
        elif removed and self.scroll_y > 0:
            # Keep the rows the operator is reading in place while old ones go.
            self._rebuilding = True
            self.scroll_to(y=max(0.0, self.scroll_y - removed), animate=False, immediate=True)
            self.call_after_refresh(setattr, self, "_rebuilding", False)
        self.refresh()
        return self

    # -- painting --------------------------------------------------------------

    @classmethod
    def _process_line(cls, line: str) -> str:
        return strip_sgr(line).expandtabs()

    def _render_line_strip(self, y: int, rich_style: Style) -> Strip:
        line = self._lines[y]
        search = self.search
        current = y == self.current_match
        selection = self.text_selection
        key = (line, search, current)
        if selection is None:
            cached = self._strips.get(key)
            if cached is not None:
                return cached
        text = Text.from_ansi(line, no_wrap=True, end="")
        text.stylize_before(rich_style)
        if search:
            style = "bold reverse" if current else "reverse"
            flags = 0 if _has_upper(search) else re.IGNORECASE
            text.highlight_regex(re.compile(re.escape(search), flags), style=style)
        if selection is not None:
            span = selection.get_span(y - self._clear_y)
            if span is not None:
                start, end = span
                if end == -1:
                    end = len(text)
                text.stylize(self.screen.get_component_rich_style("screen--selection"), start, end)
        strip = Strip(text.render(self.app.console), text.cell_len)
        if selection is None:
            self._strips[key] = strip
        return strip

    def watch_search(self) -> None:
        self.current_match = None
        self._strips.clear()
        self.refresh()

    def watch_wrap(self) -> None:
        if self.is_mounted:
            self.rebuild()

    def watch_timestamps(self) -> None:
        if self.is_mounted:
            self.rebuild()

    def watch_filter(self) -> None:
        if self.is_mounted:
            self.rebuild()

    def watch_follow(self, follow: bool) -> None:
        if follow and self.is_mounted:
            self.scroll_end(animate=False, x_axis=False)

    def on_resize(self, event: events.Resize) -> None:
        if self.wrap and self.active and self._wrap_width() != self._built_width:
            self.rebuild()

    # -- search ----------------------------------------------------------------

    def find(self, forward: bool) -> int | None:
        """Move to the next/previous row containing ``search``; returns its index."""
        if not self.search:
            return None
        needle = self.search
        fold = not _has_upper(needle)
        if fold:
            needle = needle.casefold()
        lines = self._lines
        total = len(lines)
        if not total:
            return None
        top = int(self.scroll_y)
        bottom = top + self.scrollable_content_region.height - 1
        if self.current_match is not None and top <= self.current_match <= bottom:
            start = self.current_match  # from the match on screen
        else:
            # From where the view is: forward from just above its top, back from just below its bottom.
            start = top - 1 if forward else min(total, bottom + 1)
        step = 1 if forward else -1
        index = start
        self.wrapped = False
        for _ in range(total):
            index = (index + step) % total
            if index == (0 if forward else total - 1) and start not in (-1, total):
                self.wrapped = True  # passed the end (or the start): the operator is told
            plain = strip_sgr(lines[index])
            if needle in (plain.casefold() if fold else plain):
                self.current_match = index
                self._strips.clear()
                self.scroll_to(y=max(0, index - self.scrollable_content_region.height // 2), animate=False)
                self.refresh()
                return index
        return None

    def count_matches(self) -> int:
        if not self.search:
            return 0
        needle = self.search
        fold = not _has_upper(needle)
        if fold:
            needle = needle.casefold()
            return sum(1 for line in self._lines if needle in strip_sgr(line).casefold())
        return sum(1 for line in self._lines if needle in strip_sgr(line))

    # -- user scrolling ----------------------------------------------------------

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        # An animated scroll (home, page up) reaches the top after the key's
        # own report: ask for history when it lands, unless we moved it.
        if self.follow or self._rebuilding:
            return
        if new_value <= 0 < old_value:
            self.post_message(self.UserScrolled(True, True, False))
        elif new_value > old_value and new_value >= self.max_scroll_y:
            self.post_message(self.UserScrolled(False, False, True))

    def _user_scrolled(self, up: bool) -> None:
        def report() -> None:
            at_end = self.scroll_y >= self.max_scroll_y
            self.post_message(self.UserScrolled(up, self.scroll_y <= 0, at_end))

        self.call_after_refresh(report)

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        self._user_scrolled(True)

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        self._user_scrolled(False)

    def action_scroll_up(self) -> None:
        super().action_scroll_up()
        self._user_scrolled(True)

    def action_page_up(self) -> None:
        super().action_page_up()
        self._user_scrolled(True)

    def action_scroll_home(self) -> None:
        super().action_scroll_home()
        self._user_scrolled(True)

    def action_scroll_down(self) -> None:
        super().action_scroll_down()
        self._user_scrolled(False)

    def action_page_down(self) -> None:
        super().action_page_down()
        self._user_scrolled(False)

    def action_scroll_end(self) -> None:
        super().action_scroll_end()
        self._user_scrolled(False)


def _has_upper(text: str) -> bool:
    """Smart case: a search with a capital letter is case-sensitive."""
    return any(c.isupper() for c in text)
