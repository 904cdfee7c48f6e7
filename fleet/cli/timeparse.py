"""``--since`` values: ``90s``, ``10m``, ``2h``, ``1d``, ``yesterday``, an ISO date/time or epoch seconds."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta

_REL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(value: str | None, now: float | None = None) -> float | None:
    if value is None or value == "":
        return None
    now = time.time() if now is None else now
    m = _REL.match(value)
    if m:
        return now - float(m.group(1)) * _UNITS[m.group(2)]
    v = value.strip().lower()
    if v in ("today", "yesterday"):
        start = datetime.fromtimestamp(now).replace(hour=0, minute=0, second=0, microsecond=0)
        if v == "yesterday":
            start -= timedelta(days=1)
        return start.timestamp()
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        raise ValueError(
            f"cannot read time {value!r}: use 30m, 2h, 1d, today, yesterday, 2026-11-24T22:00 or epoch seconds"
        ) from None
