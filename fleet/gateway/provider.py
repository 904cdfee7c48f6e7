"""The provider seam: what the gateway needs from "something that answers chats".

Like httpx's transports, the gateway talks to a small :class:`Provider`
protocol. :class:`LiteLLMProvider` is the real one (litellm, imported lazily by
``load()`` in a worker thread); :class:`FakeProvider` is an in-memory one for
tests that must not pay the litellm import or that need exact control of
replies, usage, failures and timing. Providers raise :class:`ProviderCallError`
only, already classified as retryable or not, so the gateway's retry and
accounting logic is the same whichever provider sits behind it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Protocol, runtime_checkable


class ProviderCallError(Exception):
    """A provider call failed. ``retryable`` for rate limits, 5xx, connection errors and timeouts."""

    def __init__(self, message: str, *, retryable: bool = False, timeout: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable or timeout
        self.timeout = timeout


@dataclass(slots=True)
class Completion:
    """A finished (non-streamed) call: the OpenAI-shaped response and what it cost.

    ``cost_usd`` is ``None`` when the provider does not know; the gateway then
    prices the usage itself.
    """

    response: dict[str, Any]
    tokens_in: int
    tokens_out: int
    cost_usd: float | None = None


@runtime_checkable
class Provider(Protocol):
    """What the gateway calls. ``params`` are already policy-checked and cleaned."""

    def load(self) -> None:
        """Blocking one-time setup (heavy imports); the gateway runs it in a worker thread."""
        ...

    def price(self, model: str, tokens_in: int, tokens_out: int) -> float:
        """USD for that usage on ``model``; 0.0 when the model has no known price."""
        ...

    def provider_of(self, model: str) -> str:
        """The provider name of ``model`` (``openai``, ``anthropic`` ...), used to pick its key."""
        ...

    async def complete(
        self, model: str, messages: list[dict[str, Any]], params: dict[str, Any]
    ) -> Completion:
        """One chat completion."""
        ...

    def stream(
        self, model: str, messages: list[dict[str, Any]], params: dict[str, Any]
    ) -> AsyncIterator[dict[str, Any]]:
        """OpenAI-shaped chunk dicts; the last one may carry ``usage`` (and ``usage.cost``)."""
        ...


#: Providers whose tokenizer litellm's ``token_counter`` really is (tiktoken).
_TIKTOKEN_PROVIDERS = frozenset({"openai", "azure", "text-completion-openai"})
#: Tokens added to that count: the framing of newer chat templates may differ by a few.
_TIKTOKEN_SLACK = 8


def _usage_tokens(usage: Any) -> tuple[int, int]:
    if not isinstance(usage, dict):
        return 0, 0
    return int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)


class LiteLLMProvider:
    """The real provider: ``litellm.acompletion``, with the embedded ``fleet/demo`` model."""

    def __init__(self, demo_latency_s: float | None = None) -> None:
        self._litellm: ModuleType | None = None
        self._retryable: tuple[type[BaseException], ...] = ()
        self._timeout: tuple[type[BaseException], ...] = ()
        self._demo_latency_s = demo_latency_s
        self._rates: dict[str, tuple[float, float]] = {}

    def load(self) -> None:
        from fleet.gateway import demo_provider
        from fleet.gateway.loader import load_litellm

        litellm = load_litellm()
        demo_provider.register(litellm, self._demo_latency_s)
        self._timeout = (litellm.Timeout,)
        self._retryable = (
            litellm.RateLimitError,
            litellm.InternalServerError,
            litellm.ServiceUnavailableError,
            litellm.APIConnectionError,
            litellm.Timeout,
        )
        self._litellm = litellm

    @property
    def litellm(self) -> ModuleType:
        if self._litellm is None:
            raise RuntimeError("LiteLLMProvider used before load()")
        return self._litellm

    def price(self, model: str, tokens_in: int, tokens_out: int) -> float:
        """Linear estimate from per-token rates cached per model.

        ``litellm.cost_per_token`` costs ~0.3 ms a call, too much for every
        reservation; tiered prices are ignored here, but settled costs come
        from litellm's own ``response_cost`` whenever it has one.
        """
        rates = self._rates.get(model)
        if rates is None:
            try:
                cin, _ = self.litellm.cost_per_token(
                    model=model, prompt_tokens=1_000_000, completion_tokens=0
                )
                _, cout = self.litellm.cost_per_token(
                    model=model, prompt_tokens=0, completion_tokens=1_000_000
                )
                rates = (float(cin) / 1_000_000, float(cout) / 1_000_000)
            except Exception:  # unmapped model: litellm raises; we price it at 0
                rates = (0.0, 0.0)
            self._rates[model] = rates
        return tokens_in * rates[0] + tokens_out * rates[1]

    def count_prompt_tokens(
        self, model: str, messages: list[dict[str, Any]], params: dict[str, Any]
    ) -> int | None:
        """The prompt's tokens as the provider counts them, where that count is known here.

        ``fleet/demo`` counts its own way (exactly); OpenAI-family models use
        litellm's ``token_counter`` (tiktoken, the provider's tokenizer, with the
        chat framing). For any other provider litellm would fall back to an
        OpenAI tokenizer, which undercounts theirs: None, and the gateway uses
        its byte bound.
        """
        if model.startswith("fleet/"):
            from fleet.gateway import demo_provider

            return demo_provider.usage_of(messages, "")["prompt_tokens"]
        if self.provider_of(model) not in _TIKTOKEN_PROVIDERS or params.get("api_base"):
            return None
        tools = params.get("tools")
        counted = self.litellm.token_counter(model=model, messages=messages, tools=tools)
        return int(counted) + _TIKTOKEN_SLACK

    def provider_of(self, model: str) -> str:
        try:
            return str(self.litellm.get_llm_provider(model)[1])
        except Exception:
            return model.split("/", 1)[0] if "/" in model else ""

    def _wrap(self, exc: Exception) -> ProviderCallError:
        if isinstance(exc, ProviderCallError):
            return exc
        message = str(exc) or type(exc).__name__
        return ProviderCallError(
            message,
            retryable=isinstance(exc, self._retryable),
            timeout=isinstance(exc, self._timeout),
        )

    async def complete(
        self, model: str, messages: list[dict[str, Any]], params: dict[str, Any]
    ) -> Completion:
        litellm = self.litellm
        try:
            resp = await litellm.acompletion(model=model, messages=messages, **params)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise self._wrap(exc) from exc
        data = resp.model_dump()
        tokens_in, tokens_out = _usage_tokens(data.get("usage"))
        cost = (getattr(resp, "_hidden_params", None) or {}).get("response_cost")
        if cost is None:
            try:
                cost = litellm.completion_cost(completion_response=resp)
            except Exception:
                cost = None
        return Completion(data, tokens_in, tokens_out, None if cost is None else float(cost))

    async def stream(
        self, model: str, messages: list[dict[str, Any]], params: dict[str, Any]
    ) -> AsyncIterator[dict[str, Any]]:
        litellm = self.litellm
        params = {**params, "stream": True}
        params.setdefault("stream_options", {"include_usage": True})
        short = model.split("/", 1)[1] if "/" in model else model
        try:
            resp = await litellm.acompletion(model=model, messages=messages, **params)
            async for chunk in resp:
                data = chunk.model_dump()
                if data.get("model") == short:  # custom providers report the bare name
                    data["model"] = model
                yield data
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise self._wrap(exc) from exc


#: How a :class:`FakeProvider` answers: text, an exception to raise, or a callable.
FakeReply = str | BaseException | Callable[[str, list[dict[str, Any]], dict[str, Any]], Awaitable[str] | str]


class FakeProvider:
    """In-memory provider for tests: scripted replies, word-count usage, fixed prices.

    ``replies`` are consumed in order (the last one repeats); an exception
    instance is raised instead of answering. ``delay_s`` (or an ``asyncio.Event``
    in ``gate``) holds every call, so tests can keep many calls in flight.
    ``calls`` records ``(model, messages, params)`` of every call.
    """

    def __init__(
        self,
        replies: list[FakeReply] | None = None,
        *,
        price_in: float = 1e-6,
        price_out: float = 2e-6,
        delay_s: float = 0.0,
        gate: asyncio.Event | None = None,
        tokens_out: int | None = None,
        load_error: BaseException | None = None,
        load_delay_s: float = 0.0,
    ) -> None:
        self.replies: list[FakeReply] = list(replies or ["ok"])
        self.price_in = price_in
        self.price_out = price_out
        self.delay_s = delay_s
        self.gate = gate
        self.fixed_tokens_out = tokens_out
        self.load_error = load_error
        self.load_delay_s = load_delay_s
        self.loaded = False
        self.calls: list[tuple[str, list[dict[str, Any]], dict[str, Any]]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._entered: asyncio.Event | None = None

    def load(self) -> None:
        if self.load_delay_s:
            time.sleep(self.load_delay_s)
        if self.load_error is not None:
            raise self.load_error
        self.loaded = True

    def price(self, model: str, tokens_in: int, tokens_out: int) -> float:
        return tokens_in * self.price_in + tokens_out * self.price_out

    def provider_of(self, model: str) -> str:
        return model.split("/", 1)[0] if "/" in model else "openai"

    async def _answer(self, model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> str:
        self.calls.append((model, messages, params))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        if self._entered is not None:
            self._entered.set()
        try:
            if self.gate is not None:
                await self.gate.wait()
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
            if isinstance(reply, BaseException):
                raise reply
            if callable(reply):
                out = reply(model, messages, params)
                reply = await out if isinstance(out, Awaitable) else out
            return str(reply)
        finally:
            self.in_flight -= 1

    async def wait_in_flight(self, n: int) -> None:
        """Wait until at least ``n`` calls are inside the provider (tests await this, never sleep)."""
        while self.in_flight < n:
            self._entered = asyncio.Event()
            await self._entered.wait()

    def _usage(self, messages: list[dict[str, Any]], text: str) -> tuple[int, int]:
        tokens_in = sum(len(str(m.get("content", "")).split()) for m in messages)
        tokens_out = self.fixed_tokens_out if self.fixed_tokens_out is not None else len(text.split())
        return tokens_in, tokens_out

    async def complete(
        self, model: str, messages: list[dict[str, Any]], params: dict[str, Any]
    ) -> Completion:
        text = await self._answer(model, messages, params)
        tokens_in, tokens_out = self._usage(messages, text)
        response = {
            "id": f"fake-{uuid.uuid4().hex[:12]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}
            ],
            "usage": {
                "prompt_tokens": tokens_in,
                "completion_tokens": tokens_out,
                "total_tokens": tokens_in + tokens_out,
            },
        }
        return Completion(response, tokens_in, tokens_out, self.price(model, tokens_in, tokens_out))

    async def stream(
        self, model: str, messages: list[dict[str, Any]], params: dict[str, Any]
    ) -> AsyncIterator[dict[str, Any]]:
        text = await self._answer(model, messages, params)
        cid = f"fake-{uuid.uuid4().hex[:12]}"
        words = text.split(" ")
        for i, word in enumerate(words):
            piece = word if i == len(words) - 1 else word + " "
            yield {
                "id": cid,
                "object": "chat.completion.chunk",
                "model": model,
                "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
            }
        tokens_in, tokens_out = self._usage(messages, text)
        yield {
            "id": cid,
            "object": "chat.completion.chunk",
            "model": model,
            "choices": [],
            "usage": {
                "prompt_tokens": tokens_in,
                "completion_tokens": tokens_out,
                "total_tokens": tokens_in + tokens_out,
            },
        }
