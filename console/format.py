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


#: Why an agent is in its state (the fleet's ``reason_kind``), as the table says it.
REASON_WORDS = {
    "operator": "by you",
    "budget": "budget",
    "alert": "alert",
    "crash-loop": "",  # the state says it
    "exit": "",  # the state says it (crashed, exited)
    "restart": "restart",
    "removed": "removed",
}
#: States whose reason and age are worth a place in the table.
EXPLAINED = frozenset({"pausing", "paused", "stopped", "crashed", "exited", "backoff", "crash-loop"})


def age(seconds: float | None) -> str:
    """A compact age for a table cell: ``12s``, ``4m``, ``3h``, ``2d``."""
    if seconds is None:
        return ""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h"
    return f"{s // 86400}d"


def reason_word(agent: dict[str, Any]) -> str:
    """One word for why the agent is in its state (``budget``, ``by you``, ``alert``), or ''."""
    kind = agent.get("reason_kind")
    if kind:
        return REASON_WORDS.get(kind, str(kind))
    return ""


def state_cell(agent: dict[str, Any], now: float) -> Text:
    """``‖ paused budget 4m``: the state, then why and since when for a stopped or paused agent."""
    state = agent.get("state", "?")
    text = state_text(state)
    if state in EXPLAINED:
        word = reason_word(agent)
        if word:
            text.append(f" {word}", style="bold")
        since = agent.get("since")
        if since:
            text.append(f" {age(now - since)}", style="dim")
    return text


def state_detail(agent: dict[str, Any], now: float) -> Text:
    """The state for the agent screen: ``‖ paused for 4m00s`` (how long, for a paused or stopped agent)."""
    state = agent.get("state", "?")
    text = state_text(state)
    since = agent.get("since")
    if since and state in EXPLAINED:
        text.append(f" for {duration(now - since)}", style="bold")
    return text


def cost_vs_budget(agent: dict[str, Any]) -> Text:
    """Cost today against the daily budget: ``$0.40/2.00``, coloured by how much is used."""
    cost = agent.get("cost_today_usd")
    budget = agent.get("budget_usd")
    used = agent.get("budget_used")
    if budget is None and used:  # an older fleet: the budget from the share used
        budget = (cost or 0.0) / used
    text = Text(usd(cost))
    if budget is None:
        text.append("/off", style="dim")
        return text
    text.append(f"/{budget:.2f}" if budget < 100 else f"/{budget:.0f}", style="dim")
    fraction = used if used is not None else ((cost or 0.0) / budget if budget else 1.0)
    if fraction >= 1.0:
        text.stylize("bold red", 0, len(usd(cost)))
    elif fraction >= 0.75:
        text.stylize("yellow", 0, len(usd(cost)))
    return text


def off(value: Any) -> str:
    """A policy value as the CLI prints it: ``None`` (no limit) is ``off``."""
    if value is None:
        return "off"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


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
