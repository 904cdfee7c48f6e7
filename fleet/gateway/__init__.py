"""The LLM gateway, tool decisions and approvals that live in the supervisor.

Importing this package is cheap: litellm is imported only when a gateway
starts (``Gateway.start()`` runs the import in a worker thread). See
``gateway.py`` for the budget model and ``provider.py`` for the seam tests use.
"""

from __future__ import annotations

from fleet.gateway.approvals import ApprovalManager, ApprovalStore, InMemoryApprovalStore
from fleet.gateway.gateway import Gateway, GatewayState, estimate_prompt_tokens, prompt_token_bound
from fleet.gateway.keys import Redactor, parse_env_file, strip_provider_keys
from fleet.gateway.provider import Completion, FakeProvider, LiteLLMProvider, Provider, ProviderCallError
from fleet.gateway.tools import ToolDecision, check_tool

__all__ = [
    "ApprovalManager",
    "ApprovalStore",
    "Completion",
    "FakeProvider",
    "Gateway",
    "GatewayState",
    "InMemoryApprovalStore",
    "LiteLLMProvider",
    "Provider",
    "ProviderCallError",
    "Redactor",
    "ToolDecision",
    "check_tool",
    "estimate_prompt_tokens",
    "parse_env_file",
    "prompt_token_bound",
    "strip_provider_keys",
]
