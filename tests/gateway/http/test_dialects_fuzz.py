"""Bad input gets a clear error and nothing else: any JSON a client may send either parses or raises
:class:`BadRequest` (answered 400 in the API's shape), never another exception (a 500).

Bodies are valid requests of each API with one value somewhere replaced by arbitrary JSON, plus
arbitrary JSON outright.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from fleet.gateway.http import anthropic, responses
from fleet.gateway.http.dialect import BadRequest

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)

ANTHROPIC: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 64,
    "system": [{"type": "text", "text": "sys", "cache_control": {"type": "ephemeral"}}],
    "messages": [
        {"role": "user", "content": [{"type": "text", "text": "hi"}]},
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "x"}, {"type": "tool_use", "id": "t", "name": "f", "input": {}}],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "t", "content": [{"type": "text", "text": "r"}]},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA"}},
            ],
        },
    ],
    "tools": [{"name": "f", "description": "d", "input_schema": {"type": "object"}}],
    "tool_choice": {"type": "tool", "name": "f"},
    "stop_sequences": ["X"],
    "metadata": {"user_id": "u"},
    "output_format": {"type": "json_schema", "schema": {"type": "object"}},
    "temperature": 0.5,
    "stream": True,
}

RESPONSES: dict[str, Any] = {
    "model": "gpt-4o",
    "instructions": "sys",
    "input": [
        {"role": "user", "content": [{"type": "input_text", "text": "hi"}]},
        {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}", "namespace": "ns"},
        {"type": "function_call_output", "call_id": "c", "output": [{"type": "input_image", "image_url": "u"}]},
        {"type": "custom_tool_call", "call_id": "d", "name": "p", "input": "x"},
        {"type": "custom_tool_call_output", "call_id": "d", "output": "ok"},
    ],
    "tools": [
        {"type": "function", "name": "f", "parameters": {"type": "object"}},
        {"type": "custom", "name": "p"},
        {"type": "namespace", "name": "ns", "tools": [{"type": "function", "name": "g"}]},
        {"type": "web_search"},
    ],
    "tool_choice": {"type": "function", "name": "f"},
    "text": {"format": {"type": "json_schema", "name": "n", "schema": {"type": "object"}}},
    "max_output_tokens": 10,
    "metadata": {"k": "v"},
    "stream": True,
}


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(obj, dict):
        for key, value in obj.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            out += _paths(value, (*prefix, i))
    return out


def _mutated(base: dict[str, Any], path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    body = copy.deepcopy(base)
    node = body
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return body


def _parses_or_refuses(parse: Any, body: Any) -> None:
    try:
        parse(body)
    except BadRequest as exc:
        assert str(exc)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(_paths(ANTHROPIC)), JSON)
def test_anthropic_parse_never_fails_otherwise(path: tuple[Any, ...], value: Any) -> None:
    _parses_or_refuses(anthropic.DIALECT.parse, _mutated(ANTHROPIC, path, value))
    _parses_or_refuses(anthropic.count_tokens, _mutated(ANTHROPIC, path, value))


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(_paths(RESPONSES)), JSON)
def test_responses_parse_never_fails_otherwise(path: tuple[Any, ...], value: Any) -> None:
    _parses_or_refuses(responses.DIALECT.parse, _mutated(RESPONSES, path, value))


def test_the_base_bodies_parse() -> None:
    assert anthropic.DIALECT.parse(copy.deepcopy(ANTHROPIC)).stream
    assert responses.DIALECT.parse(copy.deepcopy(RESPONSES)).stream
