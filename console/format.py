"""Pure formatting helpers for the console: state glyphs, sizes, bars, ages.

Kept apart from the widgets so they can be unit-tested without an app and so
every screen renders a state or a cost the same way. States carry a symbol
*and* a colour class: colour alone is lost on monochrome terminals and to
colour-blind operators.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text

from fleet.humanize import count, duration, size, usd

__all__ = ["count", "duration", "size", "usd"]  # shared with the CLI


def uptime(seconds: float | None) -> str:
    """Uptime for the fleet table: ``<10s``, ``10s`` .. ``50s`` in the first minute, then ``3m``, ``2h04m``.

    A cell that changes every second on every row repaints every row every
    second: a fleet of 200 agents just started kept a fifth of a core busy in
    the console for its first minute. Steps of ten seconds, then minutes (as
    ``pm2 ls`` and ``docker ps`` show), keep an idle table still; the agent
    screen keeps the seconds.
    """
    if seconds is None:
        return duration(seconds)
    if seconds < 10:
        return "<10s"
    if seconds < 60:
        return f"{int(seconds) // 10 * 10}s"
    if seconds < 3600:
        return f"{int(seconds) // 60}m"
    return duration(seconds)


def live_uptime(agent: dict[str, Any], now: float) -> float | None:
    """The agent's uptime at ``now``: the last reported ``uptime_s`` plus the time since it was received.

    The fleet pushes an agent's figures only when something besides its uptime
    changed, so the console runs the clock itself between pushes. ``uptime_at``
    is stamped on receipt (``ConsoleApp``); an agent without a process stays put.
    """
    seconds = agent.get("uptime_s")
    at = agent.get("uptime_at")
    if seconds is None or at is None or not agent.get("pid"):
        return seconds
    return seconds + max(0.0, now - at)


#: state -> (symbol, style). Styles are Rich styles resolved against the theme
#: by the DataTable (plain colour names so every built-in theme stays legible).
STATE_GLYPHS: dict[str, tuple[str, str]] = {
    "starting": ("◔", "cyan"),
    "running": ("●", "green"),
    "waiting": ("⌨", "bold cyan"),
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
PAUSABLE = frozenset({"running", "waiting", "starting"})
RESUMABLE = frozenset({"paused", "pausing"})
STOPPABLE = frozenset({"starting", "running", "waiting", "pausing", "paused", "backoff"})
#: States in which an agent's process reads what is written to it (``i``).
INPUTTABLE = frozenset({"running", "waiting", "paused", "pausing", "starting"})
STARTABLE = frozenset({"stopped", "exited", "crashed", "crash-loop"})


def state_text(state: str) -> Text:
    """``● running`` with the colour of the state."""
    symbol, style = STATE_GLYPHS.get(state, ("?", "white"))
    return Text(f"{symbol} {state}", style=style)


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
