"""Wire governance into a supervisor: the gateway, tools, approvals, policy ops.

The supervisor core knows processes; this module gives its agents their SDK
calls (``llm``, ``llm_stream``, ``tool``, ``approve``) and the services behind
the control ops that read and edit policy, answer approvals and show usage
(those ops are declared in :mod:`fleet.control.ops`). Each
piece checks the *current* effective policy at the moment of the call, so a
saved edit governs the very next request.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fleet.errors import FleetError, PolicyDenied, ProtocolError
from fleet.records import Event, UsageRecord
from fleet.supervisor.seams import fire

if TYPE_CHECKING:
    from fleet.supervisor.core import Supervisor
    from fleet.supervisor.instance import AgentInstance
    from fleet.wire import Approval


def _messages(args: dict[str, Any]) -> list[dict[str, Any]]:
    msgs = args.get("messages")
    if not isinstance(msgs, list) or not all(isinstance(m, dict) for m in msgs):
        raise ProtocolError("llm: 'messages' must be a list of objects")
    return msgs


async def attach(sup: Supervisor, gateway: Any = None) -> None:
    """Create the gateway and approvals for ``sup`` and register their SDK calls (their
    control ops are declared in :mod:`fleet.control.ops`)."""
    from fleet.gateway import ApprovalManager, Gateway

    store = sup.store

    async def record(rec: UsageRecord) -> None:
        if store is not None:
            await store.add_usage(rec)
        sup.publish("usage", rec.agent, {k: v for k, v in rec.to_wire().items() if k != "agent"})
        if rec.outcome != "ok":  # in the agent's own log too, not only in a toast or the usage table
            sup.note(rec.agent, f"LLM call to {rec.model} {rec.outcome}: {rec.error or 'no detail'}"[:500])
        fire(sup.hooks.on_usage, rec)

    def exhausted(agent: str, reason: str) -> None:
        inst = sup.instances.get(agent)
        sup.publish("budget", agent, {"message": reason, "action": "pause"})
        if inst is not None:
            inst.pause(f"budget exhausted: {reason}", "budget")

    if gateway is None:
        env_file = os.environ.get("FLEET_ENV_FILE") or (
            str(sup.fleet_dir / ".env") if (sup.fleet_dir / ".env").is_file() else None
        )
        gateway = Gateway(recorder=record, on_exhausted=exhausted, env_file=env_file)
    else:
        gateway.bind(recorder=record, on_exhausted=exhausted)
    sup.gateway = gateway
    sup.loghub.redact = gateway.redactor.scrub
    sup.redact = gateway.redactor.value
    if store is not None:
        day_start = time.mktime((*time.localtime()[:3], 0, 0, 0, 0, 0, -1))
        totals = await store.usage_totals()
        today = await store.usage_totals(since=day_start)
        for agent, t in totals.items():
            gateway.seed_totals(
                agent,
                int(t.get("tokens_in", 0)) + int(t.get("tokens_out", 0)),
                float(t.get("cost_usd", 0.0)),
                float(today.get(agent, {}).get("cost_usd", 0.0)),
                int(t.get("calls", 0)),
                int(t.get("errors", 0)),
            )
    # litellm costs ~4 CPU-seconds and ~200 MB to import: load it when the first
    # SDK agent comes up (or at the first call), never for fleets that cannot call
    # a model, and never while a fleet of plain commands floods its logs.
    def warm_up(inst: AgentInstance, prev: Any) -> None:
        if inst.kind == "sdk" and inst.state.value == "running":
            gateway.start()

    sup.hooks.on_state.append(warm_up)

    def publish_approval(ev: Event) -> None:
        sup.publish("approval", ev.agent, dict(approval_wire(ev.data)))

    approvals = ApprovalManager(store if store is not None else _NoApprovalStore(), publish_approval)
    sup.services.approvals = approvals

    # --- SDK calls ------------------------------------------------------------
    async def agent_llm(inst: AgentInstance, args: dict[str, Any], push: Callable[..., None]) -> Any:
        return await gateway.complete(
            inst.name, inst.policy, _messages(args), args.get("model"), args.get("params") or {},
            policy_version=sup.policy_version,
        )

    async def agent_llm_stream(inst: AgentInstance, args: dict[str, Any], push: Callable[..., None]) -> Any:
        async for chunk in gateway.stream(
            inst.name, inst.policy, _messages(args), args.get("model"), args.get("params") or {},
            policy_version=sup.policy_version,
        ):
            push(chunk)
        return {"done": True}

    async def agent_tool(inst: AgentInstance, args: dict[str, Any], push: Callable[..., None]) -> Any:
        name = str(args.get("name", ""))
        decision = inst.policy.tool_decision(name)
        sup.publish("audit", inst.name, {"action": "tool", "target": name, "origin": "policy",
                                         "details": {"decision": decision, "policy_version": sup.policy_version}})
        if decision == "deny":
            return {"decision": "deny",
                    "reason": f"tool {name!r} is not allowed by policy {inst.spec.policy or 'default'!r} "
                              f"(tools.deny / tools.allow)"}
        return {"decision": decision}

    async def agent_approve(inst: AgentInstance, args: dict[str, Any], push: Callable[..., None]) -> Any:
        action = str(args.get("action", ""))[:200]
        details = args.get("details") or {}
        if not isinstance(details, dict):
            details = {"details": details}
        context = {
            "recent_logs": [ln.text for ln in sup.loghub.recent(inst.name)[-8:]],
            "spend_today_usd": gateway.totals(inst.name).get("cost_today_usd", 0.0),
            "goal": sup.goal_for(inst),
        }
        approved, reason, by = await approvals.request(
            inst.name, action, {**details, "context": context},
            float(inst.policy.tools.approval_timeout_s), sup.policy_version,
        )
        return {"approved": approved, "reason": reason, "decided_by": by}

    sup.sdk_calls.update(llm=agent_llm, llm_stream=agent_llm_stream, tool=agent_tool, approve=agent_approve)

    # --- the same gateway over HTTP, for agents written with their own clients ----
    from fleet.gateway.http.server import Caller, GatewayServer

    def http_lookup(agent: str) -> Caller | None:
        inst = sup.instances.get(agent)
        if inst is None or not inst.state.alive:
            return None
        held = (lambda: until_resumed(agent)) if inst.want_paused else None
        return Caller(inst.name, inst.policy, sup.policy_version, held)

    async def until_resumed(agent: str) -> bool:
        """Wait, on its state events, until ``agent`` is resumed (True) or no longer alive (False)."""
        from fleet.supervisor.core import Subscriber
        from fleet.supervisor.instance import S

        changed = asyncio.Event()

        def send(_wire: dict[str, Any]) -> bool:
            changed.set()
            return True

        unsubscribe = sup.subscribe(Subscriber(send, kinds={"state"}, agents={agent}))
        try:
            while True:
                inst = sup.instances.get(agent)
                if inst is None or not inst.state.alive or inst.state is S.STOPPING:
                    return False
                if not inst.want_paused:
                    return True
                changed.clear()
                await changed.wait()
        finally:
            unsubscribe()

    async def http_approve(agent: str, action: str, details: dict[str, Any], timeout_s: float) -> Any:
        inst = sup.instances.get(agent)
        context = {
            "recent_logs": [ln.text for ln in sup.loghub.recent(agent)[-8:]],
            "spend_today_usd": gateway.totals(agent).get("cost_today_usd", 0.0),
            "goal": sup.goal_for(inst) if inst is not None else "",
        }
        return await approvals.request(agent, action, {**details, "context": context}, timeout_s,
                                       sup.policy_version)

    def http_audit(agent: str, data: dict[str, Any]) -> None:
        sup.publish("audit", agent, data)

    sup.services.http_gateway = GatewayServer(
        gateway, lookup=http_lookup, approve=http_approve, audit=http_audit, port=sup.book.fleet.gateway_port
    )



def editable_path(fleet_dir: Path, path: str) -> Path:
    """Where ``path`` is in the fleet, if it is a file the control API may edit (fleet.toml, policies/*.toml)."""
    rel = Path(path)
    if rel.is_absolute() or ".." in rel.parts:
        raise FleetError(f"{path!r}: only fleet.toml and policies/*.toml can be edited")
    if not (str(rel) == "fleet.toml" or (rel.parent == Path("policies") and rel.suffix == ".toml")):
        raise FleetError(f"{path!r}: only fleet.toml and policies/*.toml can be edited")
    return fleet_dir / rel


def approval_wire(a: dict[str, Any]) -> Approval:
    """An approval as the control API gives it: ``status`` and ``created`` whatever its source."""
    out = dict(a)
    out.setdefault("status", out.get("state", "pending"))
    out.setdefault("created", out.get("requested_at"))
    return out  # type: ignore[return-value]


class _NoApprovalStore:
    def __init__(self) -> None:
        self._n = 0

    async def add_approval(self, *args: Any, **kw: Any) -> int:
        self._n += 1
        return self._n

    async def decide_approval(self, *args: Any, **kw: Any) -> None:
        return None


__all__ = ["PolicyDenied", "attach"]
