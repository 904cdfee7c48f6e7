"""What translating between an agent's API and the gateway's canonical form costs.

Why: every call through the HTTP endpoints is parsed from Anthropic Messages or
OpenAI Responses into Chat Completions form and its answer rendered back, on
the supervisor's event loop; that must stay a small part of the <1 ms overhead
budget of the HTTP path. Bodies are shaped like Claude Code's and Codex's
(a long system prompt, a dozen tools, a tool round trip in the history), with
their size printed. ``--litellm`` also times litellm's own Anthropic adapter on
the same body (the alternative these dialects were written instead of), after
its import, whose time is printed too.

Run: ``python -m bench.dialects [--repeat N] [--litellm]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from fleet.gateway.http import anthropic, responses

SYSTEM = "You are a coding agent. " * 400  # ~10 kB, like a CLI's system prompt


def _schema(i: int) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {f"arg{j}": {"type": "string", "description": f"argument {j} of tool {i}"} for j in range(4)},
        "required": ["arg0"],
    }


def claude_code_body() -> dict[str, Any]:
    return {
        "model": "claude-sonnet-4-5",
        "max_tokens": 32000,
        "stream": True,
        "system": [
            {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1"},
            {"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral"}},
        ],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "<system-reminder>ctx</system-reminder>"}] * 8},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "plan", "signature": "s"},
                    {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"file_path": "/a.py"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "x = 1\n" * 200, "is_error": False}
                ],
            },
        ],
        "tools": [
            {"name": f"Tool{i}", "description": "does things " * 20, "input_schema": _schema(i)} for i in range(12)
        ],
        "thinking": {"type": "enabled", "budget_tokens": 31999, "display": "omitted"},
        "metadata": {"user_id": "u" * 120},
    }


def codex_body() -> dict[str, Any]:
    return {
        "model": "gpt-4o",
        "stream": True,
        "store": False,
        "reasoning": {"summary": "auto"},
        "include": ["reasoning.encrypted_content"],
        "input": [
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": SYSTEM}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "fix the test"}]},
            {"type": "function_call", "call_id": "c1", "name": "exec_command", "arguments": '{"cmd":"pytest"}'},
            {"type": "function_call_output", "call_id": "c1", "output": "1 failed\n" * 100},
        ],
        "tools": [
            *({"type": "function", "name": f"tool{i}", "parameters": _schema(i), "strict": False} for i in range(10)),
            {"type": "namespace", "name": "multi_agent_v1", "tools": [{"type": "function", "name": "spawn_agent"}]},
            {"type": "web_search", "external_web_access": False},
        ],
        "tool_choice": "auto",
        "parallel_tool_calls": True,
    }


def completion() -> dict[str, Any]:
    call = {"id": "call_1", "type": "function", "function": {"name": "Tool1", "arguments": '{"arg0":"x"}'}}
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "fleet/demo",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "I will run it. " * 10, "tool_calls": [call]},
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 3000, "completion_tokens": 40, "total_tokens": 3040},
    }


def chunks(n_text: int = 60) -> list[dict[str, Any]]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": "c",
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    out = [chunk({"role": "assistant", "content": ""})]
    out += [chunk({"content": "word "}) for _ in range(n_text)]
    start = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "Tool1", "arguments": ""}}
    out.append(chunk({"tool_calls": [start]}))
    out += [chunk({"tool_calls": [{"index": 0, "function": {"arguments": part}}]}) for part in ('{"arg0"', ':"x"}')]
    out.append(chunk({}, "tool_calls"))
    out.append({"id": "c", "object": "chat.completion.chunk", "choices": [], "usage": completion()["usage"]})
    return out


def per_op_us(fn: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """Median and p99 of ``repeat`` single calls, in microseconds."""
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter_ns()
        fn()
        samples.append((time.perf_counter_ns() - t0) / 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(0.99 * len(samples)))]


def stream_us(dialect: Any, req: Any, items: list[dict[str, Any]], repeat: int) -> tuple[float, float]:
    async def gen() -> AsyncIterator[dict[str, Any]]:
        for item in items:
            yield item

    async def drain() -> None:
        async for _ in dialect.render_stream(req, gen()):
            pass

    loop = asyncio.new_event_loop()
    try:
        return per_op_us(lambda: loop.run_until_complete(drain()), repeat)
    finally:
        loop.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2000)
    parser.add_argument("--litellm", action="store_true", help="also time litellm's Anthropic adapter")
    args = parser.parse_args()
    cc, cx, done, streamed = claude_code_body(), codex_body(), completion(), chunks()
    print(
        f"bodies: Claude Code-like {len(json.dumps(cc)) // 1024} kB, Codex-like {len(json.dumps(cx)) // 1024} kB; "
        f"stream of {len(streamed)} chunks; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
    )
    rows: list[tuple[str, tuple[float, float]]] = []
    a_req = anthropic.DIALECT.parse(cc)
    r_req = responses.DIALECT.parse(cx)
    rows.append(("anthropic parse", per_op_us(lambda: anthropic.DIALECT.parse(cc), args.repeat)))
    rows.append(("anthropic render", per_op_us(lambda: anthropic.DIALECT.render(a_req, done), args.repeat)))
    rows.append(
        ("anthropic render_stream (whole stream)", stream_us(anthropic.DIALECT, a_req, streamed, args.repeat // 4))
    )
    rows.append(("responses parse", per_op_us(lambda: responses.DIALECT.parse(cx), args.repeat)))
    rows.append(("responses render", per_op_us(lambda: responses.DIALECT.render(r_req, done), args.repeat)))
    rows.append(
        ("responses render_stream (whole stream)", stream_us(responses.DIALECT, r_req, streamed, args.repeat // 4))
    )
    if args.litellm:
        for key, value in (
            ("LITELLM_LOCAL_MODEL_COST_MAP", "True"),
            ("LITELLM_MODE", "PRODUCTION"),
            ("LITELLM_LOG", "ERROR"),
        ):
            os.environ.setdefault(key, value)
        t0 = time.perf_counter()
        from litellm.llms.anthropic.messages.adapters.transformation import LiteLLMAnthropicMessagesAdapter

        print(f"litellm adapter import: {time.perf_counter() - t0:.2f} s")
        adapter = LiteLLMAnthropicMessagesAdapter()
        rows.append(
            (
                "litellm anthropic adapter, request only",
                per_op_us(lambda: adapter.translate_anthropic_to_openai(dict(cc)), args.repeat),
            )  # type: ignore[arg-type]
        )
    print(f"{'operation':44} {'p50 us':>9} {'p99 us':>9}")
    for name, (p50, p99) in rows:
        print(f"{name:44} {p50:9.1f} {p99:9.1f}")


if __name__ == "__main__":
    main()
