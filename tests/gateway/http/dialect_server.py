"""A tiny aiohttp server that speaks one dialect over canned canonical replies.

The round-trip tests point the official clients (``anthropic``, ``openai``, the
OpenAI Agents SDK) at it: whatever a dialect renders is parsed by the client's
own code, with no gateway behind it. It runs on its own loop in a thread so the
synchronous clients can be used from a test as well as the async ones.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from fleet.gateway.http.dialect import STATUS, BadRequest, ChatRequest, Dialect, ErrorKind


@dataclass
class Canned:
    """What the server answers: a completion, a chunk list, or an error (before or mid-stream)."""

    completion: dict[str, Any] | None = None
    chunks: list[dict[str, Any]] = field(default_factory=list)
    error: tuple[ErrorKind, str] | None = None
    stream_error_after: int | None = None  # chunks delivered before a mid-stream error


class DialectServer:
    """Serve ``dialect`` on 127.0.0.1 at ``paths``; ``requests`` records each parsed request."""

    def __init__(self, dialect: Dialect, paths: tuple[str, ...]) -> None:
        self.dialect = dialect
        self.paths = paths
        self.canned: list[Canned] = []  # one per request, the last one repeats
        self.requests: list[ChatRequest] = []
        self.bodies: list[Any] = []
        self.headers: list[dict[str, str]] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> DialectServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)  # type: ignore[union-attr]
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _start(self) -> None:
        app = web.Application()
        for path in self.paths:
            app.router.add_post(path, self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def _error(self, kind: ErrorKind, message: str, param: str | None = None) -> web.Response:
        return web.json_response(
            self.dialect.error(kind, message, param), status=STATUS[kind], headers={"x-should-retry": "false"}
        )

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.headers.append({k.lower(): v for k, v in request.headers.items()})
        body = await request.json()
        self.bodies.append(body)
        count = getattr(self.dialect, "count_tokens", None)
        if request.path.endswith("/count_tokens") and count is not None:
            try:
                return web.json_response(count(body))
            except BadRequest as exc:
                return self._error("invalid_request", str(exc), exc.param)
        try:
            req = self.dialect.parse(body)
        except BadRequest as exc:
            return self._error("invalid_request", str(exc), exc.param)
        self.requests.append(req)
        canned = self.canned[min(len(self.requests), len(self.canned)) - 1]
        if canned.error is not None and canned.stream_error_after is None:
            return self._error(*canned.error)
        if not req.stream:
            assert canned.completion is not None
            return web.json_response(self.dialect.render(req, canned.completion))
        response = web.StreamResponse(headers={"content-type": "text/event-stream", "cache-control": "no-cache"})
        await response.prepare(request)

        async def chunks() -> AsyncIterator[dict[str, Any]]:
            for i, chunk in enumerate(canned.chunks):
                if canned.stream_error_after is not None and i == canned.stream_error_after:
                    raise RuntimeError("provider failed mid-stream")
                yield chunk

        try:
            async for frame in self.dialect.render_stream(req, chunks()):
                await response.write(frame)
        except RuntimeError as exc:
            kind, _ = canned.error or ("provider", "")
            await response.write(self.dialect.stream_error(kind, str(exc), req))  # type: ignore[call-arg]
        await response.write_eof()
        return response


# ----------------------------------------------------------------- canonical fixtures


def completion(
    text: str | None = "Hello there.",
    tool_calls: list[tuple[str, str, str]] = (),  # type: ignore[assignment]
    finish: str = "stop",
    prompt_tokens: int = 12,
    completion_tokens: int = 7,
) -> dict[str, Any]:
    """A canonical (Chat Completions) response; ``tool_calls`` as (id, name, arguments JSON)."""
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if tool_calls:
        message["tool_calls"] = [
            {"id": cid, "type": "function", "function": {"name": name, "arguments": args}}
            for cid, name, args in tool_calls
        ]
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "fleet/demo",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def chunks(
    texts: list[str] = (),  # type: ignore[assignment]
    tool_calls: list[tuple[str, str, list[str]]] = (),  # type: ignore[assignment]
    finish: str = "stop",
    prompt_tokens: int = 12,
    completion_tokens: int = 7,
) -> list[dict[str, Any]]:
    """Canonical chunks: text deltas, then tool calls as (id, name, argument fragments), then usage."""

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": "fleet/demo",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }

    out = [chunk({"role": "assistant", "content": ""})]
    out += [chunk({"content": t}) for t in texts]
    for position, (cid, name, fragments) in enumerate(tool_calls):
        out.append(
            chunk(
                {
                    "tool_calls": [
                        {"index": position, "id": cid, "type": "function", "function": {"name": name, "arguments": ""}}
                    ]
                }
            )
        )
        out += [chunk({"tool_calls": [{"index": position, "function": {"arguments": f}}]}) for f in fragments]
    out.append(chunk({}, finish))
    out.append(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": "fleet/demo",
            "choices": [],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
    )
    return out


def interleaved_calls() -> list[dict[str, Any]]:
    """Two parallel tool calls whose argument fragments arrive interleaved (index 0, 1, 0, 1)."""

    def chunk(calls: list[dict[str, Any]], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": "chatcmpl-2",
            "object": "chat.completion.chunk",
            "model": "fleet/demo",
            "choices": [{"index": 0, "delta": {"tool_calls": calls} if calls else {}, "finish_reason": finish}],
        }

    def start(i: int, cid: str, name: str) -> dict[str, Any]:
        return {"index": i, "id": cid, "type": "function", "function": {"name": name, "arguments": ""}}

    def frag(i: int, text: str) -> dict[str, Any]:
        return {"index": i, "function": {"arguments": text}}

    return [
        chunk([start(0, "call_a", "get_weather")]),
        chunk([start(1, "call_b", "get_weather")]),
        chunk([frag(0, '{"city":')]),
        chunk([frag(1, '{"city":')]),
        chunk([frag(0, '"Oslo"}')]),
        chunk([frag(1, '"Rome"}')]),
        chunk([], "tool_calls"),
        {
            "id": "chatcmpl-2",
            "object": "chat.completion.chunk",
            "model": "fleet/demo",
            "choices": [],
            "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
        },
    ]
