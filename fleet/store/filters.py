"""Optional filters of a SELECT, written once.

The readers take optional arguments (an agent, a time, a list of kinds) and
each used to grow its SQL by hand, ``if x is not None: sql += " AND ..."``,
once per argument and reader. ``and_terms`` does it for all of them: a term is
kept only when its value is given, and its values are always bound as
parameters, never formatted into the SQL.
"""

from __future__ import annotations

from typing import Any


def and_terms(params: list[Any], *terms: tuple[str, Any]) -> str:
    """`` AND term`` for each ``(term, value)`` whose value is given; the values go to ``params``.

    None and an empty list or tuple leave their term out. A list fills the
    ``(?)`` of its term with one placeholder per item: ``("kind IN (?)", kinds)``.
    """
    sql = ""
    for term, value in terms:
        if value is None:
            continue
        if isinstance(value, list | tuple):
            if not value:
                continue
            term = term.replace("(?)", f"({','.join('?' * len(value))})")
            params.extend(value)
        else:
            params.append(value)
        sql += f" AND {term}"
    return sql
