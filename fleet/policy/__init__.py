"""Policies: the typed schema of ``fleet.toml`` / ``policies/*.toml``, layering, live reload.

Imported by the supervisor and the CLI only (pydantic is too heavy for agent
processes). The public surface is re-exported here; see :mod:`.schema` for the
models, :mod:`.book` for loading and layering, :mod:`.watcher` for live
reload and :mod:`.overrides` for the program's own edits.
"""

from __future__ import annotations

from fleet.policy.book import (
    BUILTIN,
    BookChanges,
    PolicyBook,
    book_changes,
    book_diff,
    load_book,
    validate_text,
)
from fleet.policy.errors import PolicyError, PolicyErrors
from fleet.policy.overrides import clear_override, set_override
from fleet.policy.schema import (
    POLICY_DOC_MODELS,
    AgentSpec,
    AlertsPolicy,
    BudgetPolicy,
    FleetSettings,
    LimitsPolicy,
    LLMPolicy,
    Policy,
    RestartPolicy,
    TasksPolicy,
    ToolsPolicy,
)
from fleet.policy.watcher import PolicyWatcher

__all__ = [
    "BUILTIN",
    "POLICY_DOC_MODELS",
    "AgentSpec",
    "AlertsPolicy",
    "BookChanges",
    "BudgetPolicy",
    "FleetSettings",
    "LLMPolicy",
    "LimitsPolicy",
    "Policy",
    "PolicyBook",
    "PolicyError",
    "PolicyErrors",
    "PolicyWatcher",
    "RestartPolicy",
    "TasksPolicy",
    "ToolsPolicy",
    "book_changes",
    "book_diff",
    "clear_override",
    "load_book",
    "set_override",
    "validate_text",
]
