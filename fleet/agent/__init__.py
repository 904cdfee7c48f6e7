"""The agent SDK: what an agent process imports, and all it imports.

An SDK agent is ``async def run(ctx: Context)``. The supervisor starts it as
``python -m fleet.agent module:function`` with a socketpair on fd 3 carrying
JSON lines both ways; stdout and stderr stay plain logs. Everything an agent
may do that costs money or needs permission (LLM calls, tools, approvals,
tasks) goes over that channel to the supervisor, which holds the policy, the
keys and the budget. This module therefore imports only the standard library:
an agent starts in tens of milliseconds and weighs a few megabytes.
"""

from __future__ import annotations

from fleet.agent.context import Approval, Context, Logger, PolicyView, Task
from fleet.errors import (
    ApprovalDenied,
    BudgetExhausted,
    FleetError,
    GatewayUnavailable,
    PolicyDenied,
    ProviderError,
    RateLimited,
)

__all__ = [
    "Approval",
    "ApprovalDenied",
    "BudgetExhausted",
    "Context",
    "FleetError",
    "GatewayUnavailable",
    "Logger",
    "PolicyDenied",
    "PolicyView",
    "ProviderError",
    "RateLimited",
    "Task",
]
