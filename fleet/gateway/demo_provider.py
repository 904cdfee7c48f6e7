"""``fleet/demo``: an offline model so a fresh fleet runs with no key and no network.

It is a litellm ``CustomLLM`` registered under the provider name ``fleet`` and
priced with ``litellm.register_model``, so calls to it travel the very same
path as paid models: policy, budgets, usage records and cost all work, and a
demo fleet shows real-looking spend. Replies are deterministic (seeded by a hash
of the messages) and shaped for the three demo agents: an anomaly monitor, a
compliance-report drafter and a marketing-campaign optimiser.

So that agents written with real frameworks run offline too, it behaves like
a tool-using model: offered ``tools`` (and not told ``tool_choice = "none"``),
it calls the first one (or the one ``tool_choice`` names) with arguments made
up from its JSON schema, and answers in words once the conversation ends with
a tool result. Asked for ``response_format`` JSON, it answers with a JSON
value shaped by the schema.

The text generation below is plain stdlib; the litellm class is built inside
:func:`register`, so importing this module does not import litellm.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import time
from collections.abc import AsyncIterator
from typing import Any

MODEL = "fleet/demo"
PROVIDER = "fleet"
#: Prices per token: $50 per million input, $200 per million output. Far above a real
#: model's, on purpose: the demo's calls are short (~60 tokens), and at real prices its
#: spend would read $0.00 for hours. Priced so, an optimiser's call costs about a cent
#: and its budget bar (policies/growth.toml) moves within minutes.
INPUT_COST_PER_TOKEN = 50.0 / 1_000_000
OUTPUT_COST_PER_TOKEN = 200.0 / 1_000_000

MODEL_INFO: dict[str, Any] = {
    "input_cost_per_token": INPUT_COST_PER_TOKEN,
    "output_cost_per_token": OUTPUT_COST_PER_TOKEN,
    "litellm_provider": PROVIDER,
    "mode": "chat",
    "max_tokens": 4096,
    "max_input_tokens": 32768,
    "max_output_tokens": 4096,
}

_METRICS = ("checkout conversion", "API p95 latency", "daily revenue", "signup rate", "refund volume")
_SEVERITIES = ("low", "medium", "high", "critical")
_CHANNELS = ("email", "paid search", "social", "display", "affiliate")
_FRAMEWORKS = ("SOC 2", "GDPR", "ISO 27001", "PCI DSS")


def _text_of(messages: list[dict[str, Any]]) -> str:
    parts: list[str] = []
    for m in messages:
        content = m.get("content", "")
        if isinstance(content, list):  # OpenAI content parts
            content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        parts.append(str(content))
    return "\n".join(parts)


def seed_of(messages: list[dict[str, Any]]) -> int:
    """A stable 64-bit seed from the messages (independent of PYTHONHASHSEED)."""
    blob = json.dumps(messages, sort_keys=True, default=str).encode()
    return int.from_bytes(hashlib.blake2b(blob, digest_size=8).digest(), "big")


def count_tokens(text: str) -> int:
    """Token count the demo model reports: words x 1.3, rounded up."""
    return math.ceil(len(text.split()) * 1.3)


def demo_reply(messages: list[dict[str, Any]]) -> str:
    """The deterministic reply for these messages, shaped by their topic.

    The topic is read from the last user message first (the question being
    asked), then from the whole conversation (e.g. a system prompt).
    """
    seed = seed_of(messages)
    last_user = next(
        (_text_of([m]) for m in reversed(messages) if m.get("role") == "user"), _text_of(messages)
    ).lower()
    whole = _text_of(messages).lower()

    def pick(seq: tuple[str, ...], shift: int) -> str:
        return seq[(seed >> shift) % len(seq)]

    if messages and messages[-1].get("role") == "tool":  # sum up what a tool returned
        result = " ".join(_text_of([messages[-1]]).split())
        shown = result if len(result) <= 160 else result[:160] + "…"
        opener = pick(('Done.', 'Checked.', 'All set.'), 0)
        return f"{opener} The tool returned {shown}; nothing else is needed for now."

    for text in (last_user, whole):
        if "anomal" in text:
            metric = pick(_METRICS, 0)
            sigma = 2.0 + (seed >> 8) % 40 / 10
            severity = _SEVERITIES[min(3, int(sigma - 2.0) if sigma < 5 else 3)]
            change = 5 + (seed >> 16) % 60
            return (
                f"Assessment: {metric} moved {change}% against its 7-day baseline "
                f"({sigma:.1f} sigma), outside the normal weekly pattern. "
                f"Severity: {severity}. Recommend checking the latest deploy and upstream data feeds."
            )
        if "report" in text or "complian" in text:
            framework = pick(_FRAMEWORKS, 0)
            controls = 12 + (seed >> 8) % 30
            gaps = (seed >> 16) % 4
            findings = {
                0: "All controls operated effectively",
                1: "1 control gap was found",
            }.get(gaps, f"{gaps} control gaps were found")
            return (
                f"Draft: During this period we reviewed {controls} {framework} controls. "
                f"{findings}; access reviews were completed on schedule and no data-retention exceptions "
                f"were recorded. Remediation owners and due dates are listed in the appendix."
            )
        if "campaign" in text or "marketing" in text:
            channel = pick(_CHANNELS, 0)
            shift = 5 + (seed >> 8) % 26
            lift = 1 + (seed >> 16) % 12
            return (
                f"Recommendation: move {shift}% of the budget to {channel}; its cost per acquisition "
                f"is lowest this week. Expected lift: {lift}.{(seed >> 24) % 10}% in conversions. "
                f"Pause the two lowest-CTR creatives and re-test in 3 days."
            )
    openers = ("Understood.", "Noted.", "Here is my take.", "Done.")
    return (
        f"{pick(openers, 0)} I reviewed the request and the available context; "
        f"the next step is to gather {2 + (seed >> 8) % 5} more data points before acting."
    )


def example_of(schema: Any, name: str = "value", depth: int = 0) -> Any:
    """A value that satisfies a (simple) JSON schema: required keys, types, enums, arrays."""
    if not isinstance(schema, dict) or depth > 6:
        return name
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            return example_of(options[0], name, depth + 1)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind == "object" or (kind is None and "properties" in schema):
        props = schema.get("properties") or {}
        keys = schema.get("required") or list(props)
        return {k: example_of(props.get(k, {}), k, depth + 1) for k in keys}
    if kind == "array":
        return [example_of(schema.get("items") or {}, name, depth + 1)]
    if kind == "integer":
        return max(1, int(schema.get("minimum", 1)))
    if kind == "number":
        return float(schema.get("minimum", 1.5))
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return f"demo {name}"


def _tool_name(tool: Any) -> str | None:
    fn = tool.get("function") if isinstance(tool, dict) else None
    return fn.get("name") if isinstance(fn, dict) and isinstance(fn.get("name"), str) else None


def demo_tool_call(messages: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any] | None:
    """The tool call the demo model makes, or None to answer in words.

    It calls a tool when offered some, unless ``tool_choice`` is ``"none"`` or the
    conversation already ends with a tool's result (then it sums up in words).
    """
    tools = [t for t in params.get("tools") or () if _tool_name(t)]
    choice = params.get("tool_choice")
    if not tools or choice == "none" or (messages and messages[-1].get("role") == "tool"):
        return None
    tool = tools[0]
    if isinstance(choice, dict):
        wanted = _tool_name(choice)
        tool = next((t for t in tools if _tool_name(t) == wanted), tool)
    fn = tool["function"]
    args = example_of(fn.get("parameters") or {"type": "object", "properties": {}}, fn["name"])
    if not isinstance(args, dict):
        args = {}
    return {
        "id": f"call_{seed_of(messages) & 0xFFFFFFFFFFFF:012x}",
        "type": "function",
        "function": {"name": fn["name"], "arguments": json.dumps(args)},
    }


def demo_json(messages: list[dict[str, Any]], params: dict[str, Any]) -> str | None:
    """The JSON text answering a ``response_format`` request, or None for plain text."""
    fmt = params.get("response_format")
    if not isinstance(fmt, dict):
        return None
    if fmt.get("type") == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema") or {}
        return json.dumps(example_of(schema))
    if fmt.get("type") == "json_object":
        return json.dumps({"answer": demo_reply(messages)})
    return None


def demo_latency(seed: int) -> float:
    """Deterministic simulated latency, 20-80 ms."""
    return 0.020 + (seed % 61) / 1000


def usage_of(messages: list[dict[str, Any]], reply: str) -> dict[str, int]:
    prompt = count_tokens(_text_of(messages))
    completion = count_tokens(reply)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _truncate(reply: str, max_tokens: int | None) -> tuple[str, str]:
    """Cut the reply to about ``max_tokens``; return (text, finish_reason)."""
    if not max_tokens:
        return reply, "stop"
    words = reply.split(" ")
    keep = max(1, int(max_tokens / 1.3))
    if len(words) <= keep:
        return reply, "stop"
    return " ".join(words[:keep]), "length"


class DemoEngine:
    """The model itself, independent of litellm (also usable as an in-memory fake)."""

    def __init__(self, latency_s: float | None = None) -> None:
        #: ``None`` = deterministic 20-80 ms jitter; a number = that fixed latency (0 in tests).
        self.latency_s = latency_s

    def _delay(self, seed: int, params: dict[str, Any]) -> float:
        latency = params.get("demo_latency_s", self.latency_s)
        return demo_latency(seed) if latency is None else float(latency)

    async def reply(self, messages: list[dict[str, Any]], params: dict[str, Any]) -> tuple[str, str, dict]:
        seed = seed_of(messages)
        delay = self._delay(seed, params)
        if delay > 0:
            await asyncio.sleep(delay)
        as_json = demo_json(messages, params)
        if as_json is not None:
            return as_json, "stop", usage_of(messages, as_json)
        text, finish = _truncate(demo_reply(messages), params.get("max_tokens"))
        return text, finish, usage_of(messages, text)

    async def words(self, messages: list[dict[str, Any]], params: dict[str, Any]) -> AsyncIterator[str]:
        seed = seed_of(messages)
        delay = self._delay(seed, params)
        as_json = demo_json(messages, params)
        text = as_json if as_json is not None else _truncate(demo_reply(messages), params.get("max_tokens"))[0]
        words = text.split(" ")
        per_word = delay / max(1, len(words))
        for i, word in enumerate(words):
            if per_word > 0:
                await asyncio.sleep(per_word)
            yield word if i == len(words) - 1 else word + " "


def _chunk(text: str, usage: dict[str, int] | None, finish: str) -> dict[str, Any]:
    """A litellm ``GenericStreamingChunk``; the one carrying usage is the last."""
    return {
        "text": text,
        "tool_use": None,
        "is_finished": usage is not None,
        "finish_reason": finish,
        "usage": usage,
        "index": 0,
    }


def register(litellm: Any, latency_s: float | None = None) -> Any:
    """Register ``fleet/demo`` with litellm (idempotent); return the handler.

    ``latency_s`` sets the handler's default simulated latency; a call can
    override it with the ``demo_latency_s`` param.
    """
    for entry in litellm.custom_provider_map:
        if entry.get("provider") == PROVIDER:
            handler = entry["custom_handler"]
            if latency_s is not None:
                handler.engine.latency_s = latency_s
            return handler

    engine = DemoEngine(latency_s)

    class DemoLLM(litellm.CustomLLM):  # type: ignore[misc,name-defined]
        """litellm face of :class:`DemoEngine`."""

        def __init__(self) -> None:
            super().__init__()
            self.engine = engine

        async def acompletion(self, model: str, messages: list, *args: Any, **kwargs: Any) -> Any:
            model_response = kwargs.get("model_response")
            optional_params = dict(kwargs.get("optional_params") or {})
            if model_response is None:  # positional call (litellm passes keywords today)
                model_response = args[2]
                optional_params = dict(args[7] or {})
            call = demo_tool_call(messages, optional_params)
            if call is not None:
                from litellm.types.utils import ChatCompletionMessageToolCall, Function

                delay = self.engine._delay(seed_of(messages), optional_params)
                if delay > 0:
                    await asyncio.sleep(delay)
                fn = call["function"]
                message = model_response.choices[0].message
                message.content = None
                message.tool_calls = [
                    ChatCompletionMessageToolCall(
                        id=call["id"], type="function", function=Function(name=fn["name"], arguments=fn["arguments"])
                    )
                ]
                model_response.choices[0].finish_reason = "tool_calls"
                model_response.model = MODEL
                model_response.created = int(time.time())
                model_response.usage = litellm.Usage(**usage_of(messages, fn["name"] + " " + fn["arguments"]))
                return model_response
            text, finish, usage = await self.engine.reply(messages, optional_params)
            model_response.choices[0].message.content = text
            model_response.choices[0].finish_reason = finish
            model_response.model = MODEL
            model_response.created = int(time.time())
            model_response.usage = litellm.Usage(**usage)
            return model_response

        async def astreaming(self, model: str, messages: list, *args: Any, **kwargs: Any) -> Any:
            optional_params = dict(kwargs.get("optional_params") or (args[7] if len(args) > 7 else {}) or {})
            call = demo_tool_call(messages, optional_params)
            if call is not None:
                delay = self.engine._delay(seed_of(messages), optional_params)
                if delay > 0:
                    await asyncio.sleep(delay)
                fn = call["function"]
                chunk = _chunk("", usage_of(messages, fn["name"] + " " + fn["arguments"]), "tool_calls")
                chunk["tool_use"] = {"id": call["id"], "type": "function", "function": dict(fn), "index": 0}
                yield chunk
                return
            _, finish = _truncate(demo_reply(messages), optional_params.get("max_tokens"))
            if demo_json(messages, optional_params) is not None:
                finish = "stop"
            sent: list[str] = []
            pending: str | None = None
            async for word in self.engine.words(messages, optional_params):
                if pending is not None:
                    sent.append(pending)
                    yield _chunk(pending, None, "")
                pending = word
            text = "".join([*sent, pending or ""])
            yield _chunk(pending or "", usage_of(messages, text), finish)

        def completion(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover - sync path unused
            raise NotImplementedError("fleet/demo is async only")

    handler = DemoLLM()
    litellm.custom_provider_map = [
        *litellm.custom_provider_map,
        {"provider": PROVIDER, "custom_handler": handler},
    ]
    litellm.register_model({MODEL: dict(MODEL_INFO)})
    return handler
