"""Numbers for people: durations, sizes, counts, money — the same in the CLI and the console.

Stdlib only; the console re-exports these so every screen and every command
renders a figure the same way.
"""

from __future__ import annotations


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
