"""Tool decisions for the SDK path: may this agent call this tool, and does it need a human?

Rule order follows OPA / OpenAI Agents SDK practice: ``deny`` globs first, then
``approve`` (a tool allowed by ``"*"`` but listed for approval must still ask),
then ``allow``; a tool no rule names is denied. The policy package may offer
its own ``tool_decision(name)``; when it does, that one is authoritative.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any, Literal

ToolDecision = Literal["allow", "deny", "approve"]


def _matches(name: str, patterns: list[str] | tuple[str, ...] | None) -> bool:
    return any(fnmatchcase(name, p) for p in (patterns or ()))


def check_tool(policy: Any, name: str) -> ToolDecision:
    """Decide ``"allow"``, ``"deny"`` or ``"approve"`` for tool ``name`` under ``policy``."""
    decide = getattr(policy, "tool_decision", None)
    if callable(decide):
        result = decide(name)
        return result if result in ("allow", "deny", "approve") else "deny"
    tools = policy.tools
    if _matches(name, tools.deny):
        return "deny"
    if _matches(name, tools.approve):
        return "approve"
    if _matches(name, tools.allow):
        return "allow"
    return "deny"
