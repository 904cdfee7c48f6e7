"""Pure formatting helpers for the console: state glyphs, sizes, bars, ages.

Kept apart from the widgets so they can be unit-tested without an app and so
every screen renders a state or a cost the same way. States carry a symbol
*and* a colour class: colour alone is lost on monochrome terminals and to
colour-blind operators.
"""

from __future__ import annotations

from rich.text import Text

#: state -> (symbol, style). Styles are Rich styles resolved against the theme
#: by the DataTable (plain colour names so every built-in theme stays legible).
STATE_GLYPHS: dict[str, tuple[str, str]] = {
    "starting": ("◔", "cyan"),
    "running": ("●", "green"),
    "pausing": ("◌", "yellow"),
    "paused": ("‖", "yellow"),
    "stopping": ("◌", "magenta"),
    "stopped": ("■", "bright_black"),
    "exited": ("□", "bright_black"),
    "crashed": ("✖", "red"),
    "backoff": ("↻", "dark_orange"),
    "crash-loop": ("⟳", "bold red"),
}

#: States in which the agent can be paused / resumed / stopped / started.
PAUSABLE = frozenset({"running", "starting"})
RESUMABLE = frozenset({"paused", "pausing"})
STOPPABLE = frozenset({"starting", "running", "pausing", "paused", "backoff"})
STARTABLE = frozenset({"stopped", "exited", "crashed", "crash-loop"})


def state_text(state: str) -> Text:
    """``● running`` with the colour of the state."""
    symbol, style = STATE_GLYPHS.get(state, ("?", "white"))
    return Text(f"{symbol} {state}", style=style)


def duration(seconds: float | None) -> str:
    """Short human duration: ``42s``, ``3m05s``, ``2h04m``, ``3d02h``."""
    if seconds is None or seconds < 0:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 86400}d{(s % 86400) // 3600:02d}h"


def size(n: float | None) -> str:
    """Bytes as ``812K``, ``21M``, ``1.2G``."""
    if n is None:
        return "-"
    for unit, scale in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if n >= scale:
            value = n / scale
            return f"{value:.1f}{unit}" if value < 10 else f"{value:.0f}{unit}"
    return f"{int(n)}B"


def count(n: float | None) -> str:
    """Token counts as ``980``, ``12.3k``, ``4.1M``."""
    if n is None:
        return "-"
    if n < 1000:
        return str(int(n))
    if n < 1_000_000:
        return f"{n / 1000:.1f}k"
    return f"{n / 1_000_000:.1f}M"


def usd(v: float | None) -> str:
    if v is None:
        return "-"
    return f"${v:.2f}" if v < 100 else f"${v:.0f}"


def bar(fraction: float | None, width: int = 8) -> Text:
    """Budget use as ``▇▇▇░░░░░ 38%``; colour turns yellow at 75 %, red at 100 %."""
    if fraction is None:
        return Text("no budget", style="dim")
    f = max(0.0, fraction)
    filled = min(width, round(f * width))
    style = "red" if f >= 1.0 else "yellow" if f >= 0.75 else "green"
    text = Text("█" * filled, style=style)
    text.append("░" * (width - filled), style="dim")
    text.append(f" {f * 100:3.0f}%")
    return text


def one_line(text: str | None, limit: int = 200) -> str:
    """The last log line, flattened for a table cell."""
    if not text:
        return ""
    from fleet.ansi import sanitize

    return sanitize(text.replace("\n", " "), keep_sgr=False)[:limit]
