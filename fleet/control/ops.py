"""The control operations, independent of transport.

``Operations.call(op, args, origin)`` is what both the socket server and the
in-process client run. Operator actions are audited with their origin
(console, cli, api) before they take effect, and their reply names the
agents they touched.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from fleet.errors import FleetError, ProtocolError

if TYPE_CHECKING:
    from fleet.supervisor.core import Supervisor

Handler = Callable[..., Awaitable[Any]]

#: Operations that change the fleet and are written to the audit log.
AUDITED = {"pause", "resume", "restart", "stop", "start", "approve", "deny", "policy_write", "set_override",
           "task_add", "shutdown", "send", "answer"}
#: Audited ops whose ``text`` is what is audited (what an operator told an agent), cut to this length.
AUDIT_TEXT = {"send": 500, "answer": 500}


class Operations:
    """Control ops bound to one supervisor."""

    def __init__(self, sup: Supervisor) -> None:
        self.sup = sup
        self._extra: dict[str, Handler] = {}

    def register(self, op: str, handler: Handler) -> None:
        """Let a subsystem (gateway, tasks, policy) add its own ops."""
        self._extra[op] = handler

    async def call(self, op: str, args: dict[str, Any] | None = None, origin: str = "api") -> Any:
        args = dict(args or {})
        handler = self._extra.get(op) or getattr(self, f"op_{op}", None)
        if handler is None or not isinstance(op, str) or op.startswith("_"):
            raise ProtocolError(f"unknown op {op!r}")
        try:
            inspect.signature(handler).bind(**args)
        except TypeError as exc:
            raise ProtocolError(f"bad arguments for {op!r}: {exc}") from None
        result = await handler(**args)
        if op in AUDITED:
            await self._audit(op, args, origin, result)
        return result

    async def _audit(self, op: str, args: dict[str, Any], origin: str, result: Any) -> None:
        target = ",".join(result.get("agents", [])) if isinstance(result, dict) and "agents" in result else ""
        target = target or str(args.get("names") or args.get("id") or args.get("path") or args.get("target") or "")
        details = {k: v for k, v in args.items() if k not in ("text",)}
        if op in AUDIT_TEXT and isinstance(args.get("text"), str):
            details["text"] = args["text"][: AUDIT_TEXT[op]]
        if self.sup.store is not None:
            await self.sup.store.audit(op, target, origin, details)
        self.sup.publish("audit", None, {"action": op, "target": target, "origin": origin, "details": details})

    # --- fleet ---------------------------------------------------------------------
    async def op_ping(self) -> dict[str, Any]:
        import os

        from fleet import __version__

        return {"pid": os.getpid(), "fleet": self.sup.fleet_name, "version": __version__}

    async def op_status(self) -> dict[str, Any]:
        return self.sup.status()

    async def op_shutdown(self) -> dict[str, Any]:
        # Begin once this reply (and its audit row) is on its way, not before:
        # shutting down closes the very connection the reply goes out on.
        asyncio.get_running_loop().call_later(0.05, self.sup.request_shutdown)
        return {"stopping": True}

    # --- agents --------------------------------------------------------------------
    async def op_pause(self, names: list[str] | None = None, all: bool = False) -> dict[str, Any]:
        insts = self.sup.select(names, all)
        changed = [i.name for i in insts if i.pause("paused by operator")]
        return {"agents": [i.name for i in insts], "changed": changed}

    async def op_resume(self, names: list[str] | None = None, all: bool = False) -> dict[str, Any]:
        insts = self.sup.select(names, all)
        changed = [i.name for i in insts if i.resume()]
        return {"agents": [i.name for i in insts], "changed": changed}

    async def op_restart(self, names: list[str] | None = None, all: bool = False) -> dict[str, Any]:
        insts = self.sup.select(names, all)
        await asyncio.gather(*(i.restart() for i in insts))
        return {"agents": [i.name for i in insts]}

    async def op_stop(self, names: list[str] | None = None, all: bool = False) -> dict[str, Any]:
        insts = self.sup.select(names, all)
        await asyncio.gather(*(i.stop("stopped by operator") for i in insts))
        return {"agents": [i.name for i in insts]}

    async def op_start(self, names: list[str] | None = None, all: bool = False) -> dict[str, Any]:
        insts = self.sup.select(names, all)
        for i in insts:
            i.start(reset=True)
        return {"agents": [i.name for i in insts]}

    # --- logs and events -------------------------------------------------------------
    async def op_logs(
        self,
        agent: str | None = None,
        n: int = 200,
        before_seq: int | None = None,
        grep: str | None = None,
        since: float | None = None,
        streams: list[str] | None = None,
        before: list[Any] | None = None,
    ) -> dict[str, Any]:
        """History: one agent's lines before ``before_seq``, or all agents' before the
        cursor ``before = [ts, agent, seq]`` (the first line the client already has)."""
        if agent is not None and agent not in self.sup.instances:
            insts = self.sup.select([agent])
            if len(insts) == 1:
                agent = insts[0].name
        n = max(1, min(int(n), 100_000))
        store = self.sup.store
        if store is None:
            lines = self.sup.loghub.recent(agent) if agent else []
            return {"lines": [ln.to_wire() for ln in lines[-n:]]}
        if grep:
            found = await store.search(grep, agent=agent, limit=n, since=since)
            return {"lines": [ln.to_wire() for ln in found]}
        cursor = (float(before[0]), str(before[1]), int(before[2])) if before else None
        lines = await store.tail(agent, n=n, before_seq=before_seq, streams=streams, since=since, before=cursor)
        if agent and before_seq is None:
            # Lines read in the last moments may not have reached the disk yet.
            last = lines[-1].seq if lines else 0
            fresh = [ln for ln in self.sup.loghub.recent(agent, last) if not streams or ln.stream in streams]
            lines = (lines + fresh)[-n:]
        return {"lines": [ln.to_wire() for ln in lines]}

    async def op_events(self, n: int = 200, kinds: list[str] | None = None, agent: str | None = None,
                        since: float | None = None) -> dict[str, Any]:
        if self.sup.store is None:
            return {"events": []}
        evs = await self.sup.store.events(n=n, kinds=kinds, agent=agent, since=since)
        return {"events": [e.to_wire() for e in evs]}

    async def op_metrics(self, agent: str | None = None) -> dict[str, Any]:
        return {"metrics": self.sup.metrics(agent)}


async def no_subscribe(*_: Any, **__: Any) -> None:
    raise FleetError("subscribe is only available on a streaming connection")
