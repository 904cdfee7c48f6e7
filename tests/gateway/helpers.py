"""Test helpers: a stand-in policy, a recording recorder, a loopback OpenAI server.

The policy is built from small frozen dataclasses that expose exactly the
attributes the gateway reads (``policy.llm.*``, ``policy.budget.*``,
``policy.tools.*``), so these tests do not depend on ``fleet.policy``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class LLM:
    models: list[str] = field(default_factory=lambda: ["fleet/demo", "fake/*", "gpt-4o-mini", "openai/*"])
    model: str = "fake/model"
    temperature: float | None = None
    max_tokens: int = 100


@dataclass(frozen=True)
class Budget:
    usd_per_day: float | None = None
    tokens_per_minute: int | None = None
    requests_per_minute: int | None = None
    on_exhausted: str = "pause"


@dataclass(frozen=True)
class Tools:
    allow: list[str] = field(default_factory=list)
    deny: list[str] = field(default_factory=list)
    approve: list[str] = field(default_factory=list)
    approval_timeout_s: float = 900.0


@dataclass(frozen=True)
class Policy:
    llm: LLM = field(default_factory=LLM)
    budget: Budget = field(default_factory=Budget)
    tools: Tools = field(default_factory=Tools)


def make_policy(**sections: dict[str, Any]) -> Policy:
    """``make_policy(llm={"model": "x"}, budget={"usd_per_day": 1.0})``."""
    kinds = {"llm": LLM, "budget": Budget, "tools": Tools}
    return Policy(**{name: kinds[name](**values) for name, values in sections.items()})


def replace(policy: Policy, section: str, **values: Any) -> Policy:
    return dataclasses.replace(policy, **{section: dataclasses.replace(getattr(policy, section), **values)})


class Records:
    """A recorder that keeps every UsageRecord."""

    def __init__(self) -> None:
        self.items: list[Any] = []

    async def __call__(self, record: Any) -> None:
        self.items.append(record)

    def outcomes(self) -> list[str]:
        return [r.outcome for r in self.items]


USER = [{"role": "user", "content": "hello there"}]


class LoopbackOpenAI:
    """A tiny OpenAI-compatible server on 127.0.0.1 for the real litellm HTTP path.

    Answers ``POST /v1/chat/completions`` with usage, as JSON or as SSE when
    ``stream`` is set. ``fail_next`` holds HTTP statuses to answer the next
    requests with (e.g. ``[500]`` then success); ``error_body`` is their message.
    """

    def __init__(self, reply: str = "pong from loopback", model: str = "gpt-4o-mini") -> None:
        self.reply = reply
        self.model = model
        self.fail_next: list[int] = []
        self.error_body = "upstream exploded"
        self.requests: list[dict[str, Any]] = []
        self.auth: list[str] = []
        self.port = 0
        self._runner: Any = None

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def start(self) -> None:
        from aiohttp import web

        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _chat(self, request: Any) -> Any:
        from aiohttp import web

        body = await request.json()
        self.requests.append(body)
        self.auth.append(request.headers.get("Authorization", ""))
        if self.fail_next:
            status = self.fail_next.pop(0)
            return web.json_response(
                {"error": {"message": self.error_body, "type": "server_error", "code": status}}, status=status
            )
        words = self.reply.split(" ")
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body["messages"])
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(words),
            "total_tokens": prompt_tokens + len(words),
        }
        base = {"id": "chatcmpl-loop", "created": 1700000000, "model": self.model}
        if not body.get("stream"):
            return web.json_response(
                {
                    **base,
                    "object": "chat.completion",
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": "stop",
                            "message": {"role": "assistant", "content": self.reply},
                        }
                    ],
                    "usage": usage,
                }
            )
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        import json

        for i, word in enumerate(words):
            piece = word if i == len(words) - 1 else word + " "
            chunk = {
                **base,
                "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
            }
            await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())
        end = {
            **base,
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        }
        await resp.write(f"data: {json.dumps(end)}\n\n".encode())
        if (body.get("stream_options") or {}).get("include_usage"):
            last = {**base, "object": "chat.completion.chunk", "choices": [], "usage": usage}
            await resp.write(f"data: {json.dumps(last)}\n\n".encode())
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp
