"""An in-process HTTP gateway for the endpoint tests: real server, real clients, fake model.

``served`` starts a :class:`GatewayServer` on a free loopback port in front of a
:class:`Gateway` with a :class:`FakeProvider` (no litellm import), an
:class:`ApprovalManager` over an in-memory store, and one agent, ``bot``, whose
token is in ``served.token``. Tests talk to it with the official ``openai``
client (``served.client()``/``served.async_client()``); the sync client runs in
a worker thread so the server keeps serving on the test's loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from fleet.gateway import ApprovalManager, Completion, FakeProvider, Gateway, InMemoryApprovalStore
from fleet.gateway.demo_provider import demo_json, demo_tool_call
from fleet.gateway.http.server import Caller, GatewayServer
from fleet.policy.schema import Policy
from fleet.records import Event

from ..helpers import Records


class ToolingFake(FakeProvider):
    """A FakeProvider that, like ``fleet/demo``, calls the first tool it is offered and
    answers ``response_format`` with JSON shaped by the schema (no litellm involved).
    ``forced_call`` makes it call that tool (name, arguments) whatever it was offered."""

    forced_call: tuple[str, str] | None = None

    def _call(self, messages: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any] | None:
        if self.forced_call is not None and messages[-1].get("role") != "tool":
            name, args = self.forced_call
            return {"id": "call_forced", "type": "function", "function": {"name": name, "arguments": args}}
        return demo_tool_call(messages, params)

    async def complete(self, model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> Completion:
        call = self._call(messages, params)
        as_json = demo_json(messages, params)
        if call is None and as_json is None:
            return await super().complete(model, messages, params)
        done = await super().complete(model, messages, params)
        message: dict[str, Any] = {"role": "assistant", "content": as_json}
        if call is not None:
            message = {"role": "assistant", "content": None, "tool_calls": [call]}
        done.response["choices"][0] = {
            "index": 0,
            "message": message,
            "finish_reason": "tool_calls" if call else "stop",
        }
        return done

    async def stream(
        self, model: str, messages: list[dict[str, Any]], params: dict[str, Any]
    ) -> AsyncIterator[dict[str, Any]]:
        call = self._call(messages, params)
        if call is None:
            async for chunk in super().stream(model, messages, params):
                yield chunk
            return
        await self._answer(model, messages, params)
        base = {"id": "fake-tools", "object": "chat.completion.chunk", "model": model}
        yield {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Let me check. "}}]}
        args = call["function"]["arguments"]
        half = len(args) // 2
        yield {
            **base,
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": call["id"],
                                "type": "function",
                                "function": {"name": call["function"]["name"], "arguments": args[:half]},
                            }
                        ]
                    },
                }
            ],
        }
        yield {
            **base,
            "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": args[half:]}}]}}],
        }
        yield {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}
        yield {**base, "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}}


def policy(**sections: dict[str, Any]) -> Policy:
    """A real effective policy; every model name maps to ``fake/model`` unless told otherwise."""
    llm = {"models": ["fake/*"], "model": "fake/model", "aliases": {"*": "fake/model"}, **sections.pop("llm", {})}
    return Policy.model_validate({"llm": llm, **sections})


@dataclass
class Served:
    server: GatewayServer
    gateway: Gateway
    provider: FakeProvider
    approvals: ApprovalManager
    records: Records
    policies: dict[str, Policy]
    events: list[Event] = field(default_factory=list)
    audits: list[dict[str, Any]] = field(default_factory=list)
    token: str = ""

    @property
    def base_url(self) -> str:
        return f"{self.server.url}/v1"

    def client(self, **kw: Any) -> Any:
        import openai

        kw.setdefault("api_key", self.token)
        kw.setdefault("max_retries", 0)
        return openai.OpenAI(base_url=self.base_url, **kw)

    def async_client(self, **kw: Any) -> Any:
        import openai

        kw.setdefault("api_key", self.token)
        kw.setdefault("max_retries", 0)
        return openai.AsyncOpenAI(base_url=self.base_url, **kw)

    def set_policy(self, agent: str, pol: Policy) -> None:
        self.policies[agent] = pol

    async def pending_approval(self) -> dict[str, Any]:
        """Wait for the next approval request to be published; return it."""
        while True:
            for ev in self.events:
                if ev.kind == "approval" and ev.data.get("state") == "pending" and not ev.data.get("_seen"):
                    ev.data["_seen"] = True
                    return ev.data
            self._changed = asyncio.Event()
            await self._changed.wait()

    async def decided_approval(self, id: int) -> dict[str, Any]:
        """Wait for approval ``id`` to be decided (or expire); return its record."""
        while True:
            for ev in self.events:
                if ev.kind == "approval" and ev.data.get("id") == id and ev.data.get("state") != "pending":
                    return ev.data
            self._changed = asyncio.Event()
            await self._changed.wait()

    _changed: asyncio.Event = field(default_factory=asyncio.Event)


async def make_served(provider: FakeProvider | None = None, **server_kw: Any) -> Served:
    provider = provider or ToolingFake(["hello from the fake model"])
    records = Records()
    gateway = Gateway(provider, recorder=records, environ={})
    policies: dict[str, Policy] = {"bot": policy()}
    box: dict[str, Served] = {}

    def publish(ev: Event) -> None:
        served = box["s"]
        served.events.append(ev)
        served._changed.set()

    approvals = ApprovalManager(InMemoryApprovalStore(), publish)

    def lookup(agent: str) -> Caller | None:
        pol = policies.get(agent)
        return Caller(agent, pol, 7) if pol is not None else None

    async def approve(agent: str, action: str, details: dict[str, Any], timeout_s: float) -> Any:
        return await approvals.request(agent, action, details, timeout_s, 7)

    def audit(agent: str, data: dict[str, Any]) -> None:
        box["s"].audits.append({"agent": agent, **data})

    server = GatewayServer(gateway, lookup=lookup, approve=approve, audit=audit, **server_kw)
    served = Served(server, gateway, provider, approvals, records, policies)
    box["s"] = served
    await server.start()
    served.token = server.tokens.issue("bot")
    return served


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    s = await make_served()
    try:
        yield s
    finally:
        await s.server.close()
