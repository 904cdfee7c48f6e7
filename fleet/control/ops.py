"""Every control operation, declared once, and the dispatcher that runs them.

Each ``@operation`` below is the whole declaration of one op: its name (the
function's, without ``op_``), typed arguments (the signature after ``sup``),
typed result (a :mod:`fleet.wire` record), whether it is read-only (answered on
the control socket's own thread from published snapshots) or audited, the CLI
command that exposes it, and its one-line doc. See :mod:`fleet.control.registry`
for what is derived from them and how to add one: an op is added here, and
nowhere else in the server.

``Operations.call(op, args, origin)`` is what both the socket server and the
in-process client run. Operator actions are audited with their origin
(console, cli, api) before their reply goes out, and their reply names the
agents they touched. Handlers reach the fleet through the supervisor and the
services attached to it (``sup.services``); they hold no state of their own.
"""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING, Any

from fleet import wire
from fleet.control.registry import REGISTRY, Op, operation
from fleet.errors import FleetError, ProtocolError

if TYPE_CHECKING:
    from fleet.supervisor.core import Supervisor


class Operations:
    """The declared ops, bound to one supervisor."""

    def __init__(self, sup: Supervisor) -> None:
        self.sup = sup

    @staticmethod
    def get(op: Any) -> Op:
        """The declaration of ``op``; ``ProtocolError`` for a name nobody declared."""
        spec = REGISTRY.get(op) if isinstance(op, str) else None
        if spec is None:
            raise ProtocolError(f"unknown op {op!r}")
        return spec

    async def call(self, op: str, args: dict[str, Any] | None = None, origin: str = "api") -> Any:
        spec = self.get(op)
        checked = spec.validate(dict(args or {}))
        result = await spec.handler(self.sup, **checked)
        if spec.audited:
            await self._audit(op, checked, origin, result)
        return result

    async def _audit(self, op: str, args: dict[str, Any], origin: str, result: Any) -> None:
        target = ",".join(result.get("agents", [])) if isinstance(result, dict) and "agents" in result else ""
        target = target or str(args.get("names") or args.get("id") or args.get("path") or args.get("target") or "")
        details = {k: v for k, v in args.items() if k not in ("text",)}
        spec = self.get(op)
        if spec.audit_text and isinstance(args.get("text"), str):
            details["text"] = args["text"][: spec.audit_text]
        if self.sup.store is not None:
            await self.sup.store.audit(op, target, origin, details)
        self.sup.publish("audit", None, {"action": op, "target": target, "origin": origin, "details": details})


# --- the fleet ---------------------------------------------------------------------------------
@operation(cli=None, read_only=True, why_no_cli="a liveness probe for clients; `fleet status` says more")
async def op_ping(sup: Supervisor) -> wire.Ping:
    """Whether a fleet answers: its pid, name and version."""
    from fleet import __version__

    return {"pid": os.getpid(), "fleet": sup.fleet_name, "version": __version__}


@operation(cli="fleet status", read_only=True)
async def op_status(sup: Supervisor) -> wire.Status:
    """The fleet at a glance: the daemon, its consoles, every agent's state, pid, uptime, CPU, memory, spend."""
    return sup.status()


@operation(cli="fleet down", audited=True)
async def op_shutdown(sup: Supervisor) -> wire.Stopping:
    """Stop every agent and the fleet."""
    # Begin once this reply (and its audit row) is on its way, not before:
    # shutting down closes the very connection the reply goes out on.
    asyncio.get_running_loop().call_later(0.05, sup.request_shutdown)
    return {"stopping": True}


@operation(cli="fleet logs", streaming=True)
async def op_subscribe(sup: Supervisor, kinds: list[str] | None = None,
                       agents: list[str] | None = None, logs_max_rate: float | None = None) -> wire.Subscribed:
    """Pushed events from now on (`fleet logs -f`, the console): these kinds and agents; logs <= `logs_max_rate` B/s.

    The fleet caps every subscriber's log text at 4 MiB/s; lines past the rate are counted in
    ``logs_skipped`` pushes (every line stays in the store).
    """
    raise FleetError("subscribe is only available on a streaming connection")


# --- agents --------------------------------------------------------------------------------------
@operation(cli="fleet pause", audited=True)
async def op_pause(sup: Supervisor, names: list[str] | None = None, all: bool = False) -> wire.AgentsTouched:
    """Pause agents (a group, one name#N, or all): SIGSTOP, or at the next checkpoint for SDK agents."""
    insts = sup.select(names, all)
    changed = [i.name for i in insts if i.pause("paused by operator", "operator")]
    return {"agents": [i.name for i in insts], "changed": changed}


@operation(cli="fleet resume", audited=True)
async def op_resume(sup: Supervisor, names: list[str] | None = None, all: bool = False) -> wire.AgentsTouched:
    """Resume paused agents."""
    insts = sup.select(names, all)
    changed = [i.name for i in insts if i.resume()]
    return {"agents": [i.name for i in insts], "changed": changed}


@operation(cli="fleet restart", audited=True)
async def op_restart(sup: Supervisor, names: list[str] | None = None, all: bool = False) -> wire.AgentsTouched:
    """Stop agents gracefully and start them again."""
    insts = sup.select(names, all)
    await asyncio.gather(*(i.restart() for i in insts))
    return {"agents": [i.name for i in insts]}


@operation(cli="fleet stop", audited=True)
async def op_stop(sup: Supervisor, names: list[str] | None = None, all: bool = False) -> wire.AgentsTouched:
    """Stop agents: SIGTERM to the process group, SIGKILL after the grace period."""
    insts = sup.select(names, all)
    await asyncio.gather(*(i.stop("stopped by operator", "operator") for i in insts))
    return {"agents": [i.name for i in insts]}


@operation(cli="fleet start", audited=True)
async def op_start(sup: Supervisor, names: list[str] | None = None, all: bool = False) -> wire.AgentsTouched:
    """Start stopped agents (also clears a crash loop)."""
    insts = sup.select(names, all)
    for i in insts:
        i.start(reset=True)
    return {"agents": [i.name for i in insts]}


# --- logs, events, metrics ---------------------------------------------------------------------
@operation(cli="fleet logs")
async def op_logs(
    sup: Supervisor,
    agent: str | None = None,
    n: int = 200,
    before_seq: int | None = None,
    grep: str | None = None,
    since: float | None = None,
    streams: list[str] | None = None,
    before: list[Any] | None = None,
) -> wire.LogLines:
    """Log history: one agent's lines before `before_seq`, or all agents' before `before = [ts, agent, seq]`."""
    if agent is not None and agent not in sup.instances:
        insts = sup.select([agent])
        if len(insts) == 1:
            agent = insts[0].name
    n = max(1, min(int(n), 100_000))
    store = sup.store
    if store is None:
        lines = sup.loghub.recent(agent) if agent else []
        return {"lines": [ln.to_wire() for ln in lines[-n:]]}  # type: ignore[misc]
    if grep:
        found = await store.search(grep, agent=agent, limit=n, since=since)
        return {"lines": [ln.to_wire() for ln in found]}  # type: ignore[misc]
    cursor = (float(before[0]), str(before[1]), int(before[2])) if before else None
    lines = await store.tail(agent, n=n, before_seq=before_seq, streams=streams, since=since, before=cursor)
    if agent and before_seq is None:
        # Lines read in the last moments may not have reached the disk yet.
        last = lines[-1].seq if lines else 0
        fresh = [ln for ln in sup.loghub.recent(agent, last) if not streams or ln.stream in streams]
        lines = (lines + fresh)[-n:]
    return {"lines": [ln.to_wire() for ln in lines]}  # type: ignore[misc]


@operation(cli="fleet events")
async def op_events(sup: Supervisor, n: int = 200, kinds: list[str] | None = None, agent: str | None = None,
                    since: float | None = None) -> wire.Events:
    """Stored events (state changes, alerts, policy versions, audit ...), newest last."""
    if sup.store is None:
        return {"events": []}
    evs = await sup.store.events(n=n, kinds=kinds, agent=agent, since=since)
    return {"events": [e.to_wire() for e in evs]}  # type: ignore[misc]


@operation(cli="fleet metrics")
async def op_metrics(sup: Supervisor, agent: str | None = None) -> wire.Metrics:
    """Recent `ctx.metric` series per agent, for charts."""
    return {"metrics": sup.metrics(agent)}


# --- governance: approvals, usage, policy ----------------------------------------------------
def _approvals(sup: Supervisor) -> Any:
    if sup.services.approvals is None:
        raise FleetError("this fleet has no approvals service")
    return sup.services.approvals


@operation(cli="fleet approvals")
async def op_approvals(sup: Supervisor, pending_only: bool = True) -> wire.Approvals:
    """Approval requests: pending ones, or all with their decisions."""
    from fleet.governance import approval_wire

    if pending_only or sup.store is None:
        return {"approvals": [approval_wire(a) for a in _approvals(sup).pending()]}
    return {"approvals": [approval_wire(a) for a in await sup.store.approvals(pending_only=False)]}


@operation(cli="fleet approve", audited=True)
async def op_approve(sup: Supervisor, id: int, by: str = "operator") -> wire.Approval:
    """Approve a pending request; the waiting agent goes on."""
    from fleet.governance import approval_wire

    return approval_wire(await _approvals(sup).decide(id, True, by))


@operation(cli="fleet deny", audited=True)
async def op_deny(sup: Supervisor, id: int, reason: str = "", by: str = "operator") -> wire.Approval:
    """Deny a pending request, with a reason the agent receives."""
    from fleet.governance import approval_wire

    return approval_wire(await _approvals(sup).decide(id, False, by, reason or "denied by operator"))


@operation(cli="fleet usage")
async def op_usage(sup: Supervisor, agent: str | None = None, n: int = 50) -> wire.UsageCalls:
    """Recent LLM calls (of one agent or all): model, tokens, cost, latency, outcome."""
    if sup.store is None:
        return {"calls": []}
    recs = await sup.store.recent_usage(agent, n=n)
    return {"calls": [r.to_wire() for r in recs]}  # type: ignore[misc]


@operation(cli="fleet policy show")
async def op_policy_show(sup: Supervisor, name: str) -> wire.PolicyShown:
    """The effective policy of an agent (or a named policy), the file each value came from, keyless models."""
    shown = sup.book.describe(name)
    llm = shown["policy"].get("llm", {})
    # Allowed models the gateway has no key for, with why (the console marks and refuses them).
    check = getattr(sup.gateway, "missing_key", None)
    models = [*llm.get("models", []), llm.get("model", "")]
    unavailable = {m: why for m in models if m and "*" not in m and check is not None and (why := check(m))}
    return {**shown, "version": sup.policy_version, "unavailable": unavailable}  # type: ignore[typeddict-item]


@operation(cli=None, why_no_cli="the console's policy editor; from a shell, edit the files")
async def op_policy_files(sup: Supervisor) -> wire.PolicyFiles:
    """The texts of fleet.toml and policies/*.toml."""
    files: list[wire.PolicyFile] = [{"path": "fleet.toml", "text": (sup.fleet_dir / "fleet.toml").read_text()}]
    pol = sup.fleet_dir / "policies"
    for p in sorted(pol.glob("*.toml")) if pol.is_dir() else []:
        files.append({"path": f"policies/{p.name}", "text": p.read_text()})
    return {"files": files}


@operation(cli="fleet policy check")
async def op_policy_check(sup: Supervisor, path: str, text: str) -> wire.PolicyErrors:
    """Validate a policy file's new text against the rest of the book, without writing it."""
    from fleet.governance import editable_path
    from fleet.policy import validate_text

    editable_path(sup.fleet_dir, path)
    errors = await asyncio.to_thread(validate_text, sup.fleet_dir, path, text)
    return {"errors": [e.to_wire() for e in errors]}  # type: ignore[misc]


@operation(cli=None, audited=True, why_no_cli="the console's editor; from a shell, save the file: it is applied live")
async def op_policy_write(sup: Supervisor, path: str, text: str) -> wire.PolicyWritten:
    """Write a policy file atomically if the whole book stays valid (then applied live)."""
    from fleet.governance import editable_path
    from fleet.policy import validate_text

    target = editable_path(sup.fleet_dir, path)
    errors = await asyncio.to_thread(validate_text, sup.fleet_dir, path, text)
    if errors:
        return {"errors": [e.to_wire() for e in errors], "written": False}  # type: ignore[misc]
    tmp = target.with_name(f".{target.name}.fleet-tmp")
    tmp.write_text(text)
    os.replace(tmp, target)
    return {"errors": [], "written": True, "agents": []}


@operation(cli="fleet policy set", audited=True)
async def op_set_override(sup: Supervisor, target: str, key: str, value: Any) -> wire.OverrideSet:
    """Set one value for one agent in policies/overrides.toml (layered last)."""
    from fleet.policy import set_override

    await asyncio.to_thread(set_override, sup.fleet_dir, target, key, value)
    return {"target": target, "key": key, "value": value}


# --- agents that wait for their operator ---------------------------------------------------------
def _questions(sup: Supervisor) -> Any:
    if sup.services.questions is None:
        raise FleetError("this fleet has no question book")
    return sup.services.questions


@operation(cli="fleet send", audited=True, audit_text=500)
async def op_send(sup: Supervisor, name: str, text: str = "", eof: bool = False, raw: bool = False,
                  by: str = "operator") -> wire.Sent:
    """Write a line to an agent's input (or end-of-file); control characters only when raw."""
    from fleet.asking import send

    return send(sup, name, text, eof, raw, by)


@operation(cli="fleet questions")
async def op_questions(sup: Supervisor) -> wire.Questions:
    """Questions SDK agents asked (ctx.ask) that wait for an answer, oldest first."""
    return {"questions": _questions(sup).pending()}


@operation(cli="fleet answer", audited=True, audit_text=500)
async def op_answer(sup: Supervisor, id: int, text: str, by: str = "operator") -> wire.Answered:
    """Answer an open question (one of its choices, or its number); the agent goes on."""
    from fleet.asking import log_input

    result = _questions(sup).answer(id, text, by)
    inst = sup.instances.get(result["agent"])
    if inst is not None:
        log_input(sup, inst, by, f"answer to question {id}: {result['answer']}")
    return {**result, "agents": [result["agent"]]}


# --- tasks, alerts, the report -------------------------------------------------------------------
def _queue(sup: Supervisor) -> Any:
    if sup.services.tasks is None:
        raise FleetError("this fleet has no task queue")
    return sup.services.tasks


@operation(cli="fleet tasks")
async def op_tasks(sup: Supervisor, state: str | list[str] | None = None, kind: str | None = None,
                   n: int = 200) -> wire.Tasks:
    """Tasks, newest last (optionally of some states or one kind), and the queue's figures."""
    from fleet.tasks.queue import STATES, TaskError

    queue = _queue(sup)
    states = [state] if isinstance(state, str) else list(state or [])
    for s in states:
        if s not in STATES:
            raise TaskError(f"unknown task state {s!r} (states: {', '.join(STATES)})")
    n = max(1, min(int(n), 100_000))
    if sup.store is not None:
        items = await sup.store.tasks(states or None, kind, n)
    else:
        items = queue.snapshot(states or None, kind, n)
    return {"tasks": items, "stats": queue.stats()}


@operation(cli="fleet task add", audited=True)
async def op_task_add(sup: Supervisor, kind: str, payload: Any = None, priority: int = 0) -> wire.TaskAdded:
    """Queue a task; an agent whose policy accepts its kind takes it."""
    t = await _queue(sup).add(kind, payload, priority, by="operator")
    return {"id": t.id, "kind": t.kind, "priority": t.priority}


@operation(cli="fleet alerts")
async def op_alerts(sup: Supervisor, open_only: bool = False, n: int = 100, agent: str | None = None) -> wire.Alerts:
    """Open alerts, or the recent history of alerts with each one's state."""
    engine = sup.services.alerts
    if engine is None:
        raise FleetError("this fleet has no alert engine")
    items = await engine.listing(bool(open_only), max(1, min(int(n), 10_000)), agent)
    return {"alerts": items, "open": len(engine.open)}  # type: ignore[typeddict-item]


@operation(cli="fleet report")
async def op_report(sup: Supervisor, since: float | str | None = None, format: str = "json") -> wire.Report:
    """The morning report since a moment (default: the start of the last run), as JSON or Markdown."""
    from fleet.report import build, render_md

    if format not in ("json", "md"):
        raise FleetError(f"unknown report format {format!r} (md or json)")
    since_ts: float | None
    if isinstance(since, str):
        from fleet.cli.timeparse import parse_since

        try:
            since_ts = parse_since(since)
        except ValueError as exc:
            raise FleetError(str(exc)) from None
    else:
        since_ts = since
    if sup.store is None:
        raise FleetError("this fleet has no store to report from")
    rep = await sup.store.read(build, since_ts, None, sup.fleet_name)
    if format == "md":
        return {"format": "md", "text": render_md(rep)}
    return {"format": "json", "report": rep}
