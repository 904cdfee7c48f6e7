"""Model names for agents we did not write: aliases, then the allow-list.

A foreign agent asks for the model it was written for (``gpt-4o``,
``claude-sonnet-4-5``). ``[llm] aliases`` maps such names to a model the fleet
uses, globs allowed; the gateway's allow-list (``[llm] models``) then applies
to the result exactly as for SDK agents. Matching order is stable whatever
the order of the layered tables: an exact key first, then the longest pattern
(the most specific), ties broken by the pattern's text.
"""

from __future__ import annotations

from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Any

_GLOB_CHARS = frozenset("*?[")


def is_glob(pattern: str) -> bool:
    return any(c in _GLOB_CHARS for c in pattern)


def _ordered(aliases: Mapping[str, str]) -> list[tuple[str, str]]:
    return sorted(aliases.items(), key=lambda kv: (-len(kv[0]), kv[0]))


def resolve_model(llm: Any, asked: str | None) -> str:
    """The model a request for ``asked`` goes to under ``llm`` (a policy's ``[llm]``).

    No name, or an empty one, means the policy's default model. A name no alias
    matches is returned as it is (the allow-list decides on it).
    """
    if not asked:
        return str(llm.model)
    aliases: Mapping[str, str] = getattr(llm, "aliases", None) or {}
    if not aliases:
        return asked
    exact = aliases.get(asked)
    if exact is not None:
        return exact
    for pattern, target in _ordered(aliases):
        if is_glob(pattern) and fnmatchcase(asked, pattern):
            return target
    return asked


def listed_models(llm: Any) -> list[str]:
    """Names an agent may ask for, for ``GET /v1/models``: concrete names only.

    The allow-list's concrete names and the default model, and alias names
    without globs whose target is allowed. A policy that maps every name (``"*"``)
    shows the models it maps to.
    """
    allowed = list(getattr(llm, "models", None) or ())

    def ok(name: str) -> bool:
        return any(fnmatchcase(name, p) for p in allowed)

    names: dict[str, None] = {}
    if ok(str(llm.model)):
        names[str(llm.model)] = None
    for pattern in allowed:
        if not is_glob(pattern):
            names[pattern] = None
    for pattern, target in (getattr(llm, "aliases", None) or {}).items():
        if ok(target):
            if not is_glob(pattern):
                names[pattern] = None
            names[target] = None
    return list(names)
