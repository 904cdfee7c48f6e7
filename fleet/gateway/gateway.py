"""The LLM gateway: the one place in the fleet that spends money on models.

Agents never hold provider keys and never import litellm; their LLM calls come
over the control channel to this object in the supervisor, which decides
*before* spending: is the model on the agent's allow-list, is there budget left
today and this minute, is the agent within its request rate. Only then does it
call the provider, and afterwards it settles the real usage and cost.

Decisions worth knowing:

* **Reserve, then settle.** Budgets must hold when an agent has many calls in
  flight, so each call reserves an upper bound of what it can cost before it
  starts: the prompt as the provider's own tokenizer counts it where litellm
  knows it (``Provider.count_prompt_tokens``), else one token per UTF-8 byte
  (no tokenizer makes more tokens than bytes; chars/4 undercounted CJK and
  emoji prompts threefold), plus ``max_tokens``, priced by the provider. Admission looks
  at settled spend *plus* reservations. A call is admitted while that sum is
  below the limit, so an agent overshoots by at most one call's worth; a call
  refused while others are still in flight waits for them to settle instead of
  failing early. All checks and the reservation run without an ``await`` in
  between, so they are atomic on the event loop.
* **Windows.** ``usd_per_day`` is per local calendar day; ``tokens_per_minute``
  and ``requests_per_minute`` are sliding windows (60 s by default).
* **Per-agent isolation.** Each agent has its own ledger, rate window and
  concurrency semaphore (8 in flight by default; the rest queue), so one
  flooding agent is throttled without slowing the fleet.
* **Lazy litellm.** ``start()`` runs ``provider.load()`` (the ~4 s import) in a
  worker thread and returns at once; calls made meanwhile await it.
* **Everything is recorded**, refused and failed calls too, through the
  injected ``recorder``; in-memory totals serve the console without queries.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import inspect
import json
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from fleet.errors import (
    BudgetExhausted,
    GatewayUnavailable,
    PolicyDenied,
    ProtocolError,
    ProviderError,
    RateLimited,
)
from fleet.gateway.keys import Redactor, collect_keys, is_provider_key_name, is_secret_name, missing_key
from fleet.gateway.loader import in_daemon_thread
from fleet.gateway.provider import Completion, Provider, ProviderCallError
from fleet.records import UsageRecord

if TYPE_CHECKING:
    from fleet.policy import Policy

log = logging.getLogger(__name__)

GatewayState = Literal["idle", "loading", "ready", "error"]
#: ``await recorder(record)`` persists one call (the store's usage table).
Recorder = Callable[[UsageRecord], Awaitable[None]]
#: ``on_exhausted(agent, reason)``: the supervisor pauses the agent. May be sync or async.
ExhaustedCallback = Callable[[str, str], Awaitable[None] | None]

#: Params an agent may not set: they would change how the gateway itself runs.
_FORBIDDEN_PARAMS = frozenset(
    {
        "stream",
        "stream_options",
        "callbacks",
        "success_callback",
        "failure_callback",
        "logger_fn",
        "litellm_logging_obj",
        "client",
        "custom_llm_provider",
        "acompletion",
    }
)
#: Gateway-only params, taken out before the provider sees them.
_GATEWAY_PARAMS = ("retries", "timeout_s")
MAX_RETRIES = 5
#: Output tokens assumed for the estimate when neither the call nor the policy sets ``max_tokens``.
DEFAULT_OUT_ESTIMATE = 1024


@dataclass(slots=True)
class _Ledger:
    """One agent's accounting: totals, today's spend, windows, reservations."""

    day: str
    semaphore: asyncio.Semaphore
    tokens: int = 0
    cost_usd: float = 0.0
    cost_today_usd: float = 0.0
    calls: int = 0
    errors: int = 0
    denied: int = 0
    reserved_usd: float = 0.0
    reserved_tokens: int = 0
    in_flight: int = 0
    usd_per_day: float | None = None
    requests: deque[float] = field(default_factory=deque)
    token_window: deque[tuple[float, int]] = field(default_factory=deque)
    window_tokens: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(slots=True)
class _Call:
    """A call that passed the static checks: what it asks for and what it reserved."""

    agent: str
    model: str
    messages: list[dict[str, Any]]
    params: dict[str, Any]
    retries: int
    timeout_s: float
    est_tokens_in: int
    est_tokens: int
    est_usd: float
    policy_version: int
    secrets: tuple[str, ...]
    endpoint: str = "sdk"
    started: float = 0.0
    reserved: bool = False


@dataclass(frozen=True, slots=True)
class _Totals:
    """One agent's figures as last published by the loop: what ``totals_snapshot`` reads."""

    day: str
    tokens: int
    cost_usd: float
    cost_today_usd: float
    calls: int
    errors: int
    denied: int
    in_flight: int
    usd_per_day: float | None


def _day_key(ts: float) -> str:
    return _day_of_second(int(ts))


@functools.lru_cache(maxsize=8)
def _day_of_second(second: int) -> str:
    """Local date of a whole second: the stats push asks it for every agent each second."""
    return time.strftime("%Y-%m-%d", time.localtime(second))


def _seconds_to_midnight(ts: float) -> float:
    now = dt.datetime.fromtimestamp(ts)
    midnight = dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time())
    return max(0.0, midnight.timestamp() - ts)


#: Framing tokens (role markers, separators) per message and per request: above any chat template's.
FRAMING_PER_MESSAGE = 8
FRAMING_PER_REQUEST = 16
#: An image part costs a fixed number of tokens whatever its URL's length: bound it generously.
IMAGE_TOKENS_BOUND = 6400
#: Params that are sent as part of the prompt and billed as input tokens.
_PROMPT_PARAMS = ("tools", "functions", "tool_choice", "response_format")


def _utf8_len(value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode("utf-8", "surrogatepass"))
    return len(json.dumps(value, ensure_ascii=False, default=str).encode("utf-8", "surrogatepass"))


def prompt_token_bound(messages: list[dict[str, Any]], params: Mapping[str, Any] | None = None) -> int:
    """An upper bound on the prompt tokens of any provider, with no tokenizer: one per UTF-8 byte.

    Every token of a byte-level BPE (OpenAI, Anthropic, Llama 3...) or of a
    SentencePiece model with byte fallback is at least one byte long, so no
    tokenizer makes more tokens than the text has bytes. Everything sent is
    counted: message contents (text parts, and a fixed bound per image),
    names, tool calls, and the tools and response format given as params.
    """
    total = FRAMING_PER_REQUEST
    for m in messages:
        total += FRAMING_PER_MESSAGE
        for key, value in m.items():
            if key == "role" or value is None:
                continue
            if key == "content" and isinstance(value, list):
                for part in value:
                    if isinstance(part, dict) and part.get("type") in ("image_url", "image", "input_image"):
                        total += IMAGE_TOKENS_BOUND
                    else:
                        total += _utf8_len(part.get("text", part) if isinstance(part, dict) else part)
            else:
                total += _utf8_len(value)
    for key in _PROMPT_PARAMS:
        if params and params.get(key) is not None:
            total += _utf8_len(params[key])
    return total


#: The name this function had when it divided characters by four (kept for callers).
estimate_prompt_tokens = prompt_token_bound
#: Prompts longer than this (bytes) are counted by the provider's tokenizer in a worker thread.
_COUNT_IN_THREAD_BYTES = 32 * 1024


async def _close_quietly(stream: Any) -> None:
    """Close a provider's stream if it can be closed; an error while closing is not the call's."""
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except Exception:
            pass


def _usage_tokens(usage: Any) -> tuple[int, int] | None:
    if not isinstance(usage, Mapping):
        return None
    tin, tout = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if tin is None and tout is None:
        return None
    return int(tin or 0), int(tout or 0)


class Gateway:
    """Policy-checked, budgeted, recorded access to LLM providers for every agent.

    Args:
        provider: the seam to the models; default :class:`LiteLLMProvider`.
        recorder: ``await recorder(UsageRecord)`` for every call (ok, denied, error, timeout).
        on_exhausted: called as ``on_exhausted(agent, reason)`` when the daily
            budget is exhausted under ``on_exhausted = "pause"`` (the supervisor
            pauses the agent). ``tokens_per_minute`` refusals raise
            ``BudgetExhausted`` without it: that window refills by itself.
        env_file: a ``.env`` file with provider keys, read into the gateway only.
        environ: where supervisor keys come from (default ``os.environ``).
        clock: wall-clock seconds (``time.time``); days and windows follow it.
        max_in_flight: concurrent provider calls per agent; the rest queue.
        max_block_s: longest a call waits under ``on_exhausted = "block"``.
        window_s: length of the sliding per-minute windows (tests shorten it).
        retry_backoff_s: first retry delay; doubles each retry.
        default_timeout_s: per-call timeout when the call sets no ``timeout_s``.
    """

    def __init__(
        self,
        provider: Provider | None = None,
        *,
        recorder: Recorder | None = None,
        on_exhausted: ExhaustedCallback | None = None,
        env_file: str | Path | None = None,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
        max_in_flight: int = 8,
        max_block_s: float = 300.0,
        window_s: float = 60.0,
        retry_backoff_s: float = 0.5,
        default_timeout_s: float = 60.0,
    ) -> None:
        if provider is None:
            from fleet.gateway.provider import LiteLLMProvider

            provider = LiteLLMProvider()
        if environ is None:
            import os

            environ = os.environ
        self._provider = provider
        self._recorder = recorder
        self._on_exhausted = on_exhausted
        self._clock = clock
        self.max_in_flight = max_in_flight
        self.max_block_s = max_block_s
        self.window_s = window_s
        self.retry_backoff_s = retry_backoff_s
        self.default_timeout_s = default_timeout_s
        self._keys: dict[str, str] = collect_keys(environ, env_file)
        self._redact = Redactor(v for k, v in self._keys.items() if is_secret_name(k))
        self._ledgers: dict[str, _Ledger] = {}
        #: Immutable per-agent figures, replaced by the loop after each change to a ledger. Another
        #: thread (the control socket's ``status``) reads them and never touches a ledger.
        self._published: dict[str, _Totals] = {}
        self._state: GatewayState = "idle"  # nothing loaded until first needed
        self._load_task: asyncio.Task[None] | None = None
        self._load_error: str = ""

    def missing_key(self, model: str) -> str | None:
        """Why ``model`` has no key here (``"no OPENAI_API_KEY ..."``), or None; only for the litellm provider."""
        from fleet.gateway.provider import LiteLLMProvider

        if not isinstance(self._provider, LiteLLMProvider):
            return None
        return missing_key(model, self._keys)

    # ------------------------------------------------------------------ loading

    @property
    def state(self) -> GatewayState:
        """``idle`` until first needed, ``loading`` while the provider loads, then ``ready`` or ``error``."""
        return self._state

    def bind(self, *, recorder: Recorder | None = None, on_exhausted: ExhaustedCallback | None = None) -> None:
        """Attach the supervisor's recorder and budget callback (unless already given)."""
        self._recorder = self._recorder or recorder
        self._on_exhausted = self._on_exhausted or on_exhausted

    @property
    def redactor(self) -> Redactor:
        """Redacts the gateway's keys (and anything key-shaped) from text."""
        return self._redact

    @property
    def provider(self) -> Provider:
        return self._provider

    @property
    def key_names(self) -> list[str]:
        """Names (never values) of the provider keys the gateway holds."""
        return sorted(self._keys)

    def start(self) -> None:
        """Begin loading the provider (litellm import) in a worker thread; return at once."""
        if self._load_task is None:
            self._state = "loading"
            self._load_task = asyncio.get_running_loop().create_task(self._load(), name="gateway-load")

    async def _load(self) -> None:
        started = time.perf_counter()
        try:
            # A daemon thread, not asyncio.to_thread: exit must not wait for the import (see loader).
            await in_daemon_thread(self._provider.load)
        except Exception as exc:
            self._load_error = self._redact(f"{type(exc).__name__}: {exc}")
            self._state = "error"
            log.error("LLM gateway failed to load: %s", self._load_error)
        else:
            self._state = "ready"
            log.info("LLM gateway ready in %.2fs", time.perf_counter() - started)

    async def ready(self) -> None:
        """Wait until loaded; raise :class:`GatewayUnavailable` if loading failed."""
        if self._state != "ready":
            self.start()
            assert self._load_task is not None
            await asyncio.shield(self._load_task)
        if self._state == "error":
            raise GatewayUnavailable(f"LLM gateway failed to load: {self._load_error}")

    # ------------------------------------------------------------------ totals

    def _ledger(self, agent: str) -> _Ledger:
        led = self._ledgers.get(agent)
        if led is None:
            led = _Ledger(day=_day_key(self._clock()), semaphore=asyncio.Semaphore(self.max_in_flight))
            self._ledgers[agent] = led
        return led

    def _roll(self, led: _Ledger, now: float) -> None:
        """Start a new day and drop window entries older than ``window_s``."""
        day = _day_key(now)
        if day != led.day:
            led.day = day
            led.cost_today_usd = 0.0
        horizon = now - self.window_s
        while led.requests and led.requests[0] <= horizon:
            led.requests.popleft()
        while led.token_window and led.token_window[0][0] <= horizon:
            led.window_tokens -= led.token_window.popleft()[1]

    def totals(self, agent: str, policy: Policy | None = None) -> dict[str, Any]:
        """In-memory totals of ``agent`` since start (plus what was seeded).

        ``budget_used`` is today's cost / ``usd_per_day`` of ``policy`` (or of the
        policy of the agent's last call); ``None`` without a daily budget.
        """
        led = self._ledger(agent)
        self._roll(led, self._clock())
        limit = policy.budget.usd_per_day if policy is not None else led.usd_per_day
        return {
            "tokens": led.tokens,
            "cost_usd": led.cost_usd,
            "cost_today_usd": led.cost_today_usd,
            "calls": led.calls,
            "errors": led.errors,
            "denied": led.denied,
            "in_flight": led.in_flight,
            "budget_used": None if limit is None else (led.cost_today_usd / limit if limit > 0 else 1.0),
        }

    def totals_snapshot(self, agent: str) -> dict[str, Any]:
        """``totals(agent)`` from the last published figures: safe from any thread, writes nothing.

        A day that ended since is read as no spend today, as ``totals`` would roll it.
        """
        t = self._published.get(agent)
        if t is None:
            return {"tokens": 0, "cost_usd": 0.0, "cost_today_usd": 0.0, "calls": 0, "errors": 0, "denied": 0,
                    "in_flight": 0, "budget_used": None}
        today = t.cost_today_usd if t.day == _day_key(self._clock()) else 0.0
        limit = t.usd_per_day
        return {
            "tokens": t.tokens,
            "cost_usd": t.cost_usd,
            "cost_today_usd": today,
            "calls": t.calls,
            "errors": t.errors,
            "denied": t.denied,
            "in_flight": t.in_flight,
            "budget_used": None if limit is None else (today / limit if limit > 0 else 1.0),
        }

    def _publish(self, agent: str, led: _Ledger) -> None:
        """Publish ``agent``'s figures for readers on other threads (one atomic dict store)."""
        self._published[agent] = _Totals(
            led.day, led.tokens, led.cost_usd, led.cost_today_usd, led.calls, led.errors, led.denied,
            led.in_flight, led.usd_per_day,
        )

    def seed_totals(
        self, agent: str, tokens: int, cost_usd: float, cost_today_usd: float, calls: int = 0, errors: int = 0
    ) -> None:
        """Start ``agent``'s totals from the store's figures (supervisor startup), so
        today's spend survives a restart and still counts against the daily budget."""
        led = self._ledger(agent)
        self._roll(led, self._clock())
        led.tokens, led.cost_usd, led.cost_today_usd = int(tokens), float(cost_usd), float(cost_today_usd)
        led.calls, led.errors = int(calls), int(errors)
        self._publish(agent, led)

    # ------------------------------------------------------------------ calls

    async def complete(
        self,
        agent: str,
        policy: Policy,
        messages: list[dict[str, Any]],
        model: str | None = None,
        params: Mapping[str, Any] | None = None,
        *,
        policy_version: int = 0,
        endpoint: str = "sdk",
    ) -> dict[str, Any]:
        """One chat completion for ``agent`` under its effective ``policy``.

        ``params`` are passed to the provider (``max_tokens``, ``temperature``,
        litellm's ``mock_response`` ...) except the gateway's own: ``retries``
        (default 0) and ``timeout_s`` (default 60). Returns the OpenAI-shaped
        response dict. Raises ``PolicyDenied`` (``llm.models``),
        ``BudgetExhausted``, ``RateLimited``, ``ProviderError`` or
        ``GatewayUnavailable``. ``endpoint`` names the API the call came
        through (``sdk``, ``openai.chat`` ...) in its usage record.
        """
        async with self._admitted(agent, policy, messages, model, params, policy_version, endpoint) as call:
            try:
                result: Completion = await self._attempts(call, self._complete_once)
            except BaseException as exc:
                raise await self._failed(call, exc) from None
        cost = result.cost_usd
        if cost is None:
            cost = self._provider.price(call.model, result.tokens_in, result.tokens_out)
        await self._settle(call, "ok", result.tokens_in, result.tokens_out, cost)
        return result.response

    async def stream(
        self,
        agent: str,
        policy: Policy,
        messages: list[dict[str, Any]],
        model: str | None = None,
        params: Mapping[str, Any] | None = None,
        *,
        policy_version: int = 0,
        endpoint: str = "sdk",
    ) -> AsyncIterator[dict[str, Any]]:
        """Like :meth:`complete`, streamed: yields OpenAI-shaped chunk dicts.

        Checks happen at the first ``__anext__``. ``timeout_s`` bounds the wait
        for each chunk; retries apply only until the first chunk arrives. Usage
        comes from the provider's final usage chunk, else is estimated from the
        text. Closing the iterator early settles what was received.
        """
        async with self._admitted(agent, policy, messages, model, params, policy_version, endpoint) as call:
            usage: tuple[int, int] | None = None
            reported_cost: float | None = None
            received = 0  # UTF-8 bytes of streamed content
            inner: AsyncIterator[dict[str, Any]] | None = None
            settled = False
            try:
                inner, first = await self._attempts(call, self._open_stream)
                chunk: dict[str, Any] | None = first
                while chunk is not None:
                    found = _usage_tokens(chunk.get("usage"))
                    if found is not None:
                        usage = found
                        cost_field = chunk["usage"].get("cost")
                        reported_cost = float(cost_field) if cost_field is not None else None
                    for choice in chunk.get("choices") or ():
                        delta = choice.get("delta") or {}
                        received += _utf8_len(delta.get("content") or "")
                    yield chunk
                    try:
                        async with asyncio.timeout(call.timeout_s):
                            chunk = await anext(inner)
                    except StopAsyncIteration:
                        chunk = None
                    except TimeoutError:
                        raise ProviderCallError(
                            f"stream stalled: no chunk for {call.timeout_s:g}s", timeout=True
                        ) from None
            except GeneratorExit:
                pass  # the consumer stopped early: settle what it got
            except BaseException as exc:
                settled = True
                raise await self._failed(call, exc) from None
            finally:
                if inner is not None:
                    await _close_quietly(inner)
                if not settled:
                    # Without a usage chunk: what was reserved for the prompt, a token per byte received.
                    tin, tout = usage if usage is not None else (call.est_tokens_in, received)
                    cost = reported_cost
                    if cost is None:
                        cost = self._provider.price(call.model, tin, tout)
                    await self._settle(call, "ok", tin, tout, cost)

    @contextlib.asynccontextmanager
    async def _admitted(
        self,
        agent: str,
        policy: Policy,
        messages: list[dict[str, Any]],
        model: str | None,
        params: Mapping[str, Any] | None,
        policy_version: int,
        endpoint: str = "sdk",
    ) -> AsyncIterator[_Call]:
        """The path every call takes before the provider: checks, a slot of the agent's
        concurrency, its limits and its reservation (``complete`` and ``stream`` share it)."""
        call = await self._prepare(agent, policy, messages, model, params, policy_version, endpoint)
        async with self._ledger(agent).semaphore:
            await self._admit(call, policy)
            yield call

    async def _failed(self, call: _Call, exc: BaseException) -> BaseException:
        """Settle a failed call (recorded as an error or timeout); return what to raise."""
        await self._fail(call, exc)
        return self._as_fleet_error(call, exc)

    async def _complete_once(self, call: _Call) -> Completion:
        # asyncio.timeout, not wait_for: no extra task per call (~50 us).
        async with asyncio.timeout(call.timeout_s):
            return await self._provider.complete(call.model, call.messages, dict(call.params))

    async def _open_stream(self, call: _Call) -> tuple[AsyncIterator[dict[str, Any]], dict[str, Any] | None]:
        inner = self._provider.stream(call.model, call.messages, dict(call.params))
        try:
            async with asyncio.timeout(call.timeout_s):
                first = await anext(inner)
        except StopAsyncIteration:
            first = None
        except BaseException:
            await _close_quietly(inner)
            raise
        return inner, first

    async def _attempts(self, call: _Call, once: Callable[[_Call], Awaitable[Any]]) -> Any:
        """Run ``once`` with retries and exponential backoff for retryable failures."""
        attempt = 0
        while True:
            try:
                return await once(call)
            except TimeoutError:
                err = ProviderCallError(f"timed out after {call.timeout_s:g}s", timeout=True)
            except ProviderCallError as exc:
                err = exc
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a provider that broke the seam's contract
                err = ProviderCallError(f"{type(exc).__name__}: {exc}")
            if not err.retryable or attempt >= call.retries:
                raise err
            delay = self.retry_backoff_s * (2**attempt)
            log.info("%s: %s retry %d in %.2fs: %s", call.agent, call.model, attempt + 1, delay, err)
            await asyncio.sleep(delay)
            attempt += 1

    # ------------------------------------------------------------------ checks

    async def _prepare(
        self,
        agent: str,
        policy: Policy,
        messages: list[dict[str, Any]],
        model: str | None,
        params: Mapping[str, Any] | None,
        policy_version: int,
        endpoint: str = "sdk",
    ) -> _Call:
        """Static checks (messages, model allow-list), wait for loading, build the call."""
        if not isinstance(messages, list) or not all(
            isinstance(m, dict) and isinstance(m.get("role"), str) for m in messages
        ):
            raise ProtocolError("messages must be a list of {'role': ..., 'content': ...} objects")
        llm = policy.llm
        chosen = model or llm.model
        if not chosen or not any(fnmatchcase(chosen, pattern) for pattern in (llm.models or ())):
            allowed = ", ".join(llm.models or ()) or "nothing"
            exc = PolicyDenied(
                f"model {chosen!r} is not allowed for {agent} (llm.models: {allowed})", "llm.models"
            )
            await self._deny(agent, chosen or "", exc, policy_version, endpoint)
            raise exc
        await self.ready()

        p = {k: v for k, v in (params or {}).items() if k not in _FORBIDDEN_PARAMS}
        retries = max(0, min(MAX_RETRIES, int(p.pop("retries", 0) or 0)))
        timeout_s = float(p.pop("timeout_s", None) or p.pop("timeout", None) or self.default_timeout_s)
        p.pop("timeout", None)
        cap = llm.max_tokens
        asked = p.get("max_tokens")
        max_tokens = min(int(asked), cap) if asked and cap else (int(asked) if asked else cap)
        if max_tokens:
            p["max_tokens"] = max_tokens
        if "temperature" not in p and llm.temperature is not None:
            p["temperature"] = llm.temperature
        p["timeout"] = timeout_s
        if "base_url" in p:
            p.setdefault("api_base", p.pop("base_url"))
        secrets: tuple[str, ...] = ()
        if "api_base" in p:
            # The caller chose the endpoint: never send it the supervisor's keys
            # (litellm would otherwise read OPENAI_API_KEY & co. from os.environ).
            p.setdefault("api_key", "fleet-no-key")
        elif "api_key" not in p:
            prefix = self._provider.provider_of(chosen).upper().replace("-", "_")
            if prefix:
                key = self._keys.get(f"{prefix}_API_KEY")
                base = self._keys.get(f"{prefix}_API_BASE")
                if key:
                    p["api_key"] = key
                if base:
                    p["api_base"] = base
        if isinstance(p.get("api_key"), str):
            secrets = (p["api_key"],)

        est_in = await self._prompt_tokens(chosen, messages, p)
        est_out = max_tokens or DEFAULT_OUT_ESTIMATE
        return _Call(
            agent=agent,
            model=chosen,
            messages=messages,
            params=p,
            retries=retries,
            timeout_s=timeout_s,
            est_tokens_in=est_in,
            est_tokens=est_in + est_out,
            est_usd=self._provider.price(chosen, est_in, est_out),
            policy_version=policy_version,
            secrets=secrets,
            endpoint=endpoint,
        )

    async def _prompt_tokens(self, model: str, messages: list[dict[str, Any]], params: Mapping[str, Any]) -> int:
        """What the prompt will count for the budget: the provider's own count, else the byte bound.

        The provider counts only where its tokenizer is known (litellm's, once
        litellm is loaded); a long prompt is counted in a worker thread so the
        loop keeps serving other agents meanwhile.
        """
        bound = prompt_token_bound(messages, params)
        counter = getattr(self._provider, "count_prompt_tokens", None)
        if counter is None:
            return bound
        try:
            if bound > _COUNT_IN_THREAD_BYTES:
                counted = await asyncio.to_thread(counter, model, messages, dict(params))
            else:
                counted = counter(model, messages, dict(params))
        except Exception:  # a tokenizer that fails never stops a call: fall back to the bound
            log.debug("token count failed for %s", model, exc_info=True)
            return bound
        return bound if counted is None else int(counted)

    async def _admit(self, call: _Call, policy: Policy) -> None:
        """Wait for, or refuse, the agent's rate and budget limits; then reserve.

        Checks and reservation run with no ``await`` between them. Raises
        ``RateLimited`` / ``BudgetExhausted``; under ``on_exhausted = "block"``
        waits for the window to roll over instead, up to ``max_block_s``.
        """
        budget = policy.budget
        led = self._ledger(call.agent)
        led.usd_per_day = budget.usd_per_day
        block = budget.on_exhausted == "block"
        deadline: float | None = None
        started = time.monotonic()
        while True:
            now = self._clock()
            self._roll(led, now)
            refusal: PolicyDenied | None = None
            wait_s: float | None = None  # None: wait for an in-flight call to settle
            rpm, usd, tpm = budget.requests_per_minute, budget.usd_per_day, budget.tokens_per_minute
            if rpm is not None and len(led.requests) >= rpm:
                wait_s = (led.requests[0] + self.window_s - now) if led.requests else self.window_s
                refusal = RateLimited(
                    f"{call.agent} made {len(led.requests)} requests in the last {self.window_s:g}s "
                    f"(budget.requests_per_minute = {rpm}); retry in {max(wait_s, 0):.1f}s",
                    "budget.requests_per_minute",
                )
            elif usd is not None and led.cost_today_usd >= usd:
                wait_s = _seconds_to_midnight(now)
                refusal = BudgetExhausted(
                    f"{call.agent} spent ${led.cost_today_usd:.4f} today of its "
                    f"budget.usd_per_day = ${usd:g}; it resets at local midnight",
                    "budget.usd_per_day",
                )
            elif tpm is not None and led.window_tokens >= tpm:
                wait_s = led.token_window[0][0] + self.window_s - now if led.token_window else self.window_s
                refusal = BudgetExhausted(
                    f"{call.agent} used {led.window_tokens} tokens in the last {self.window_s:g}s "
                    f"(budget.tokens_per_minute = {tpm}); retry in {max(wait_s, 0):.1f}s",
                    "budget.tokens_per_minute",
                )
            elif (
                usd is not None and led.reserved_usd > 0 and led.cost_today_usd + led.reserved_usd >= usd
            ) or (
                tpm is not None and led.reserved_tokens > 0 and led.window_tokens + led.reserved_tokens >= tpm
            ):
                pass  # only in-flight reservations stand in the way: wait for them to settle
            else:
                led.requests.append(now)
                led.reserved_usd += call.est_usd
                led.reserved_tokens += call.est_tokens
                led.in_flight += 1
                call.reserved = True
                call.started = time.perf_counter()
                self._publish(call.agent, led)
                return

            if refusal is not None:
                refusal.retry_after_s = max(wait_s or 0.0, 0.0)
            if refusal is not None and not block:
                await self._deny(call.agent, call.model, refusal, call.policy_version, call.endpoint)
                # Only the daily budget pauses the agent: a per-minute window refills by itself.
                if refusal.policy == "budget.usd_per_day" and self._on_exhausted is not None:
                    try:
                        out = self._on_exhausted(call.agent, str(refusal))
                        if inspect.isawaitable(out):
                            await out
                    except Exception:
                        log.exception("on_exhausted callback failed for %s", call.agent)
                raise refusal
            if refusal is not None:
                if deadline is None:
                    deadline = started + self.max_block_s
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    refusal.args = (f"{refusal} (waited {self.max_block_s:g}s, the gateway's max_block_s)",)
                    await self._deny(call.agent, call.model, refusal, call.policy_version, call.endpoint)
                    raise refusal
                timeout = min(max(wait_s or 0.0, 0.001), remaining)
            else:
                timeout = self.window_s  # settles always come (calls time out); re-check anyway
            event = led.changed
            try:  # not wait_for: 3.11's swallows a cancel that lands as the event is set
                async with asyncio.timeout(timeout):
                    await event.wait()
            except TimeoutError:
                pass

    # ------------------------------------------------------------------ accounting

    def _notify(self, led: _Ledger) -> None:
        led.changed.set()
        led.changed = asyncio.Event()

    async def _settle(
        self, call: _Call, outcome: str, tokens_in: int, tokens_out: int, cost: float, error: str = ""
    ) -> None:
        """Replace the call's reservation by what it really used, and record it."""
        led = self._ledger(call.agent)
        now = self._clock()
        self._roll(led, now)
        if call.reserved:
            call.reserved = False
            led.reserved_usd = max(0.0, led.reserved_usd - call.est_usd)
            led.reserved_tokens = max(0, led.reserved_tokens - call.est_tokens)
            led.in_flight -= 1
            if led.in_flight == 0:  # drop float dust
                led.reserved_usd, led.reserved_tokens = 0.0, 0
        used = tokens_in + tokens_out
        if used:
            led.token_window.append((now, used))
            led.window_tokens += used
        led.tokens += used
        led.cost_usd += cost
        led.cost_today_usd += cost
        led.calls += 1
        if outcome in ("error", "timeout"):
            led.errors += 1
        self._notify(led)
        self._publish(call.agent, led)
        latency = time.perf_counter() - call.started if call.started else 0.0
        await self._record(
            UsageRecord(
                agent=call.agent,
                model=call.model,
                tokens_in=tokens_in,
                tokens_out=tokens_out,
                cost_usd=cost,
                latency_s=latency,
                outcome=outcome,
                ts=now,
                error=error,
                policy_version=call.policy_version,
                endpoint=call.endpoint,
            )
        )

    async def _fail(self, call: _Call, exc: BaseException) -> None:
        if isinstance(exc, asyncio.CancelledError):
            outcome, message = "error", "cancelled"
        elif isinstance(exc, ProviderCallError):
            outcome = "timeout" if exc.timeout else "error"
            message = self._redact(str(exc), call.secrets)
        else:
            outcome, message = "error", self._redact(f"{type(exc).__name__}: {exc}", call.secrets)
        await self._settle(call, outcome, 0, 0, 0.0, message)

    def _as_fleet_error(self, call: _Call, exc: BaseException) -> BaseException:
        if isinstance(exc, asyncio.CancelledError | GatewayUnavailable):
            return exc
        message = self._redact(str(exc) or type(exc).__name__, call.secrets)
        return ProviderError(f"{call.model}: {message}")

    async def _deny(
        self, agent: str, model: str, exc: PolicyDenied, policy_version: int, endpoint: str = "sdk"
    ) -> None:
        led = self._ledger(agent)
        led.calls += 1
        led.denied += 1
        self._publish(agent, led)
        await self._record(
            UsageRecord(
                agent=agent,
                model=model,
                tokens_in=0,
                tokens_out=0,
                cost_usd=0.0,
                latency_s=0.0,
                outcome="denied",
                ts=self._clock(),
                error=f"{exc.policy}: {exc}",
                policy_version=policy_version,
                endpoint=endpoint,
            )
        )

    async def _record(self, record: UsageRecord) -> None:
        if self._recorder is None:
            return
        try:
            await self._recorder(record)
        except Exception:  # accounting must not turn a good answer into an error
            log.exception("usage recorder failed for %s", record.agent)


def provider_key_names(env: Mapping[str, str]) -> list[str]:
    """Names of provider credentials present in ``env`` (for diagnostics; never values)."""
    return sorted(k for k in env if is_provider_key_name(k))
