"""Agent names as an operator types them: the closest known name when one is mistyped.

One helper for the supervisor (``fleet pause anomaly-wach`` over the socket)
and for the commands that read the store without a fleet (``fleet logs``),
so a typo gets the same "did you mean" wherever it is made. Stdlib only.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(name: str, known: Iterable[str]) -> str | None:
    """The known name ``name`` most likely meant, if one is close enough to be a typo."""
    found = difflib.get_close_matches(name, list(dict.fromkeys(known)), n=1, cutoff=0.6)
    return found[0] if found else None


def unknown_agent_message(name: str, known: Iterable[str]) -> str:
    """``no agent named 'x'``, with the closest name when it looks like a typo, else the agents."""
    names = list(dict.fromkeys(known))
    guess = closest(name, names)
    if guess is not None:
        return f"no agent named {name!r}; did you mean {guess!r}?"
    groups = [n for n in names if "#" not in n]
    return f"no agent named {name!r} (agents: {', '.join(groups) or 'none'})"
