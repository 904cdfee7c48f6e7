"""The error hierarchy shared by the supervisor, the CLI and the console.

Kept stdlib-only so the agent SDK can raise the same types it receives over its
control channel. Every error carries a ``code`` that survives JSON transport.
"""

from __future__ import annotations


class FleetError(Exception):
    """Base of every error the fleet raises on purpose."""

    code = "fleet_error"


class FleetNotRunning(FleetError):
    """No supervisor answers on the control socket of this fleet."""

    code = "not_running"


class ProtocolError(FleetError):
    """A malformed, oversized or unknown message on a control channel."""

    code = "protocol_error"


class AgentError(FleetError):
    """An operation on one agent failed."""

    code = "agent_error"


class UnknownAgent(AgentError):
    """The named agent (or instance) does not exist in the fleet."""

    code = "unknown_agent"


class PolicyDenied(FleetError):
    """The agent's effective policy refused the request.

    ``policy`` names the section that refused (``llm.models``, ``budget``,
    ``tools.deny`` ...) so that the agent, and the operator reading its logs,
    know which knob to turn.
    """

    code = "policy_denied"
    #: For refusals that lift by themselves (rate windows, the daily budget): seconds until then.
    retry_after_s: float | None = None

    def __init__(self, message: str, policy: str = "") -> None:
        super().__init__(message)
        self.policy = policy


class BudgetExhausted(PolicyDenied):
    code = "budget_exhausted"


class RateLimited(PolicyDenied):
    code = "rate_limited"


class ApprovalDenied(PolicyDenied):
    code = "approval_denied"


class ProviderError(FleetError):
    """The LLM provider failed (network, 5xx, timeout) after the policy allowed the call."""

    code = "provider_error"


class GatewayUnavailable(FleetError):
    """The gateway restarted or is not reachable; the call may be retried."""

    code = "gateway_unavailable"


class TooManyConnections(FleetError):
    """The control socket is at its connection cap and no idle connection could make room."""

    code = "too_many_connections"


ERRORS_BY_CODE: dict[str, type[FleetError]] = {
    cls.code: cls
    for cls in (
        FleetError,
        FleetNotRunning,
        ProtocolError,
        AgentError,
        UnknownAgent,
        PolicyDenied,
        BudgetExhausted,
        RateLimited,
        ApprovalDenied,
        ProviderError,
        GatewayUnavailable,
        TooManyConnections,
    )
}


def error_to_wire(exc: BaseException) -> dict[str, str]:
    """Serialise an exception for a JSON reply."""
    code = getattr(exc, "code", "fleet_error") if isinstance(exc, FleetError) else "internal"
    out = {"code": code, "message": str(exc) or type(exc).__name__}
    policy = getattr(exc, "policy", "")
    if policy:
        out["policy"] = policy
    return out


def error_from_wire(data: dict[str, str]) -> FleetError:
    """Rebuild the typed error a peer sent."""
    cls = ERRORS_BY_CODE.get(data.get("code", ""), FleetError)
    message = data.get("message", "error")
    if issubclass(cls, PolicyDenied):
        return cls(message, data.get("policy", ""))
    return cls(message)
