"""Small helpers the HTTP dialects and the server share, kept in one place.

The dialect modules (``anthropic``, ``responses``, ``openai_chat``) stay pure
translations; what each of them needed alike (compact JSON, SSE frames, ids,
type-safe field reads, the coercion of a litellm object to a dict) lives here
so that a fix lands once. Like the dialects, this module imports only the
standard library and :mod:`fleet.gateway.http.dialect`: the supervisor imports
it before the gateway (and litellm) has loaded.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from fleet.gateway.http.dialect import BadRequest, ErrorKind

#: Anthropic's error ``type`` for each kind (the server sets the status). The
#: Anthropic dialect answers with it, and the server too on Anthropic's paths
#: when that dialect could not be loaded.
ANTHROPIC_ERROR_TYPES: Mapping[ErrorKind, str] = {
    "invalid_request": "invalid_request_error",
    "authentication": "authentication_error",
    "permission": "permission_error",
    "not_found": "not_found_error",
    "too_large": "request_too_large",
    "rate_limit": "rate_limit_error",
    "budget": "rate_limit_error",
    "provider": "api_error",
    "timeout": "api_error",
    "unavailable": "overloaded_error",
}

#: OpenAI's error ``type`` and ``code`` for the kinds that are the client's
#: doing, alike in Chat Completions and Responses. The two APIs name a server's
#: failure differently (``api_error`` and ``server_error``): each dialect adds
#: its own ``provider``, ``timeout`` and ``unavailable``.
OPENAI_CLIENT_ERROR_TYPES: Mapping[ErrorKind, tuple[str, str | None]] = {
    "invalid_request": ("invalid_request_error", None),
    "authentication": ("invalid_request_error", "invalid_api_key"),
    "permission": ("permission_error", "permission_denied"),
    "not_found": ("invalid_request_error", "not_found"),
    "too_large": ("invalid_request_error", "request_too_large"),
    "rate_limit": ("rate_limit_error", "rate_limit_exceeded"),
    "budget": ("insufficient_quota", "insufficient_quota"),
}


def dumps(obj: Any) -> str:
    """Compact JSON, non-ASCII kept as is (what every dialect sends)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def sse_frame(event: str, data: Mapping[str, Any]) -> bytes:
    """One server-sent event with a name, as the Anthropic and Responses streams frame them."""
    return f"event: {event}\ndata: {dumps(data)}\n\n".encode()


def type_of(obj: Mapping[str, Any], default: str | None = None) -> str | None:
    """``obj["type"]`` when it is a string, else None (a list there must not reach a set lookup)."""
    kind = obj.get("type", default)
    return kind if isinstance(kind, str) else None


def new_id(prefix: str) -> str:
    """A fresh id for a message, response or item: ``prefix`` and 24 random hex digits."""
    return prefix + os.urandom(12).hex()


def as_dict(obj: Any) -> dict[str, Any]:
    """A canonical chat completion as a dict (a litellm ``ModelResponse`` is dumped)."""
    if isinstance(obj, dict):
        return obj
    dump = getattr(obj, "model_dump", None)
    if dump is not None:  # a litellm ModelResponse slipped through
        return dump()
    raise TypeError(f"expected a chat completion dict, got {type(obj).__name__}")


def number(body: Mapping[str, Any], key: str) -> float | None:
    """``body[key]`` when it is a number, None when absent; a bool or anything else is a bad request."""
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadRequest(f"{key}: expected a number", key)
    return value
