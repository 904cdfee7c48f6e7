"""Tool rules for agents we did not write, applied to the canonical chat form.

An SDK agent asks the fleet before it runs a tool. A foreign agent's framework
runs whatever tool call the model returns, so the gateway governs the calls on
their way back instead, once, on the canonical (Chat Completions) form that
every dialect translates to:

* **Before the model sees the request**, tools the policy denies (``[tools]
  deny``, or not allowed) are taken out of ``tools``; a ``tool_choice`` naming
  one is dropped.
* **A call the policy denies anyway** (the model invented it) is replaced.
* **A call that needs approval** (``[tools] approve``) is held until a human
  decides in the console or with ``fleet approve``/``fleet deny``, with its
  arguments in the request's details. Approved, it is released as the model
  made it. Denied or timed out, it is replaced.
* **Replaced** means: the call is removed and the assistant message gets a
  text saying which call was not run and why; with no call left the finish
  reason becomes ``stop``. The answer stays well formed, so the agent's loop
  goes on (it reads the text) instead of crashing on an error.

When streaming, text is passed on as it comes; only the tool-call part (and the
finish/usage chunks after it) is held, and released after the provider's
stream has ended, so the call is already settled while a human thinks.

Every decision on a model's tool call is audited (``origin = "http"``);
approvals are persisted by the :class:`~fleet.gateway.approvals.ApprovalManager`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fleet.gateway.tools import check_tool

#: ``await approve(agent, action, details, timeout_s) -> (approved, reason, decided_by)``.
ApproveFn = Callable[[str, str, dict[str, Any], float], Awaitable[tuple[bool, str, str]]]
#: ``audit(agent, data)``: one audit event (``action``, ``target``, ``origin``, ``details``).
AuditFn = Callable[[str, dict[str, Any]], None]

#: Arguments shown in an approval request and in a replacement text are cut to this.
MAX_SHOWN_ARGS = 4000


@dataclass(slots=True)
class _Verdict:
    call: dict[str, Any]
    kept: bool
    note: str = ""


def tool_name(tool: Any) -> str | None:
    """The function name of a Chat Completions tool (``{"type": "function", "function": {"name"}}``)."""
    if isinstance(tool, dict):
        fn = tool.get("function")
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            return fn["name"]
    return None


def _args_of(call: dict[str, Any]) -> tuple[str, Any]:
    raw = str(((call.get("function") or {}).get("arguments")) or "")
    try:
        parsed: Any = json.loads(raw) if raw else {}
    except ValueError:
        parsed = raw[:MAX_SHOWN_ARGS]
    return raw, parsed


class ToolGate:
    """The tool rules of one agent's policy, applied to one call.

    Args:
        agent: the instance making the call.
        policy: its effective policy (``tool_decision``/``tools``).
        approve: asks a human (the fleet's ApprovalManager plus context).
        audit: records each decision on a model's tool call.
        endpoint: the API the call came through, for the audit and the approval.
        policy_version: recorded with each decision.
    """

    def __init__(
        self,
        agent: str,
        policy: Any,
        *,
        approve: ApproveFn,
        audit: AuditFn,
        endpoint: str,
        policy_version: int = 0,
        model: str = "",
    ) -> None:
        self.agent = agent
        self.policy = policy
        self._approve = approve
        self._audit = audit
        self.endpoint = endpoint
        self.policy_version = policy_version
        self.model = model
        self.removed: list[str] = []
        #: Awaited once before the first approval request (the server starts its keep-alive there).
        self.on_hold: Callable[[], Awaitable[None]] | None = None

    # ------------------------------------------------------------------ request

    def filter_request(self, params: dict[str, Any]) -> dict[str, Any]:
        """``params`` without the tools the policy denies (a new dict; ``params`` is not changed)."""
        tools = params.get("tools")
        if not isinstance(tools, list) or not tools:
            return params
        kept = []
        for tool in tools:
            name = tool_name(tool)
            if name is not None and check_tool(self.policy, name) == "deny":
                self.removed.append(name)
            else:
                kept.append(tool)
        if not self.removed:
            return params
        out = dict(params)
        choice = out.get("tool_choice")
        if isinstance(choice, dict) and tool_name(choice) in self.removed:
            out.pop("tool_choice")
        if kept:
            out["tools"] = kept
        else:
            for key in ("tools", "tool_choice", "parallel_tool_calls"):
                out.pop(key, None)
        return out

    # ------------------------------------------------------------------ decisions

    async def _decide(self, call: dict[str, Any]) -> _Verdict:
        fn = call.get("function") or {}
        name = str(fn.get("name") or "")
        raw, parsed = _args_of(call)
        decision = check_tool(self.policy, name)
        details: dict[str, Any] = {
            "decision": decision,
            "policy_version": self.policy_version,
            "endpoint": self.endpoint,
        }
        verdict: _Verdict
        if decision == "allow":
            verdict = _Verdict(call, True)
        elif decision == "deny":
            verdict = _Verdict(
                call,
                False,
                self._note(name, raw, "the fleet's policy does not allow this tool (tools.deny / tools.allow)"),
            )
        else:
            timeout_s = float(self.policy.tools.approval_timeout_s)
            if self.on_hold is not None:
                hold, self.on_hold = self.on_hold, None
                await hold()
            approved, reason, by = await self._approve(
                self.agent,
                name,
                {
                    "tool": name,
                    "arguments": parsed,
                    "tool_call_id": call.get("id"),
                    "model": self.model,
                    "endpoint": self.endpoint,
                },
                timeout_s,
            )
            details.update(approved=approved, decided_by=by, reason=reason)
            if approved:
                verdict = _Verdict(call, True)
            elif by == "timeout":
                verdict = _Verdict(
                    call, False, self._note(name, raw, f"it needs a human approval and none came within {timeout_s:g}s")
                )
            else:
                verdict = _Verdict(
                    call, False, self._note(name, raw, f"a human ({by}) denied it: {reason or 'no reason given'}")
                )
        self._audit(self.agent, {"action": "tool", "target": name, "origin": "http", "details": details})
        return verdict

    @staticmethod
    def _note(name: str, raw_args: str, why: str) -> str:
        shown = raw_args if len(raw_args) <= 200 else raw_args[:200] + "…"
        return f"[fleet] The tool call {name}({shown}) was not run: {why}."

    async def _decide_all(self, calls: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str]:
        """Kept calls (renumbered) and the text replacing the others; approvals are asked together."""
        verdicts = await asyncio.gather(*(self._decide(c) for c in calls))
        kept = [v.call for v in verdicts if v.kept]
        notes = "\n".join(v.note for v in verdicts if not v.kept)
        return kept, notes

    # ------------------------------------------------------------------ answers

    async def gate_completion(self, completion: dict[str, Any]) -> dict[str, Any]:
        """A non-streamed answer with its tool calls decided (held for approval as needed)."""
        choices = completion.get("choices") or []
        if not any(((c.get("message") or {}).get("tool_calls")) for c in choices):
            return completion
        out_choices = []
        for choice in choices:
            message = dict(choice.get("message") or {})
            calls = message.get("tool_calls") or []
            if not calls:
                out_choices.append(choice)
                continue
            kept, notes = await self._decide_all([dict(c) for c in calls])
            if len(kept) == len(calls):
                out_choices.append(choice)
                continue
            message["tool_calls"] = kept or None
            message["content"] = "\n".join(t for t in (message.get("content"), notes) if t)
            out_choices.append({**choice, "message": message, "finish_reason": "tool_calls" if kept else "stop"})
        return {**completion, "choices": out_choices}

    async def gate_stream(self, chunks: AsyncIterator[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
        """Canonical chunks with tool calls decided: text passes at once, tool calls wait for the end."""
        held: dict[int, dict[str, Any]] = {}
        tail: list[dict[str, Any]] = []
        template: dict[str, Any] = {}
        async for chunk in chunks:
            choices = chunk.get("choices") or []
            calls_here = [c for c in choices if (c.get("delta") or {}).get("tool_calls")]
            if not held and not calls_here:
                yield chunk
                continue
            template = chunk
            for choice in calls_here:
                for part in choice["delta"]["tool_calls"]:
                    _merge_call(held, part)
            stripped = []
            for choice in choices:
                delta = {k: v for k, v in (choice.get("delta") or {}).items() if k != "tool_calls"}
                stripped.append({**choice, "delta": delta})
            rest = {**chunk, "choices": stripped}
            if chunk.get("usage") or any(c.get("finish_reason") for c in stripped):
                tail.append(rest)  # the end of the answer waits for the decisions
            elif any(c["delta"].get("content") for c in stripped):
                yield rest  # text streams on
        if not held:
            for chunk in tail:
                yield chunk
            return
        calls = [held[i] for i in sorted(held)]
        kept, notes = await self._decide_all(calls)
        base = {k: v for k, v in template.items() if k not in ("choices", "usage")}
        if kept:
            parts = [{"index": i, **{k: v for k, v in c.items() if k != "index"}} for i, c in enumerate(kept)]
            yield {**base, "choices": [{"index": 0, "delta": {"tool_calls": parts}, "finish_reason": None}]}
        if notes:
            yield {**base, "choices": [{"index": 0, "delta": {"content": notes}, "finish_reason": None}]}
        finish = "tool_calls" if kept else "stop"
        finished = False
        for chunk in tail:
            fixed = []
            for choice in chunk.get("choices") or []:
                if choice.get("finish_reason"):
                    finished = True
                    choice = {**choice, "finish_reason": finish}
                fixed.append(choice)
            yield {**chunk, "choices": fixed}
        if not finished:
            yield {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}


def _merge_call(held: dict[int, dict[str, Any]], part: dict[str, Any]) -> None:
    """Add one streamed tool-call fragment (``index``, ``id``, ``function.name``, ``function.arguments``)."""
    index = int(part.get("index") or 0)
    call = held.get(index)
    fn = part.get("function") or {}
    if call is None:
        call = {
            "id": part.get("id") or f"call_{index}",
            "type": part.get("type") or "function",
            "function": {"name": fn.get("name") or "", "arguments": ""},
        }
        held[index] = call
    elif part.get("id"):
        call["id"] = part["id"]
    if fn.get("name") and not call["function"]["name"]:
        call["function"]["name"] = fn["name"]
    if fn.get("arguments"):
        call["function"]["arguments"] += fn["arguments"]
