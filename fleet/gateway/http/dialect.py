"""The seam between the gateway's HTTP server and the APIs it speaks.

Agents we did not write talk to the gateway in the API their client was built
for: OpenAI Chat Completions, OpenAI Responses or Anthropic Messages. The
server does the work that is the same for all of them (who is calling, which
policy, budgets, tool rules, approvals, accounting); a :class:`Dialect` only
translates. Inside, one canonical form is used, the one litellm and the
SDK path already speak: an OpenAI Chat Completions request, response and
stream of chunks. So a dialect is three pure translations and an error shape:

    body of its API  --parse-->     ChatRequest (canonical)
    canonical reply  --render-->    body of its API
    canonical chunks --render_stream--> Server-Sent Events of its API

Tool governance works on the canonical form (``tools`` in the request,
``message.tool_calls`` and ``delta.tool_calls`` in the answer), so it is
written once and holds whatever API the agent uses.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

#: What went wrong, independent of the API; each dialect maps it to its own
#: ``type``/``code`` and the server to an HTTP status (see ``STATUS``).
ErrorKind = Literal[
    "invalid_request",  # 400: malformed JSON, wrong shape, unknown field value
    "authentication",  # 401: no token, or a token of no running agent
    "permission",  # 403: the policy refuses (model not allowed, browser Origin, denied tool)
    "not_found",  # 404: unknown path or model
    "too_large",  # 413: body over the limit
    "rate_limit",  # 429 + retry-after: requests/tokens per minute; the client may retry
    "budget",  # 429 + x-should-retry: false: the daily budget is spent; clients do not retry
    "provider",  # 502: the provider failed after the policy allowed the call
    "timeout",  # 504: the provider did not answer in time
    "unavailable",  # 503: the gateway is loading or failed to load
]

STATUS: Mapping[ErrorKind, int] = {
    "invalid_request": 400,
    "authentication": 401,
    "permission": 403,
    "not_found": 404,
    "too_large": 413,
    "rate_limit": 429,
    "budget": 429,
    "provider": 502,
    "timeout": 504,
    "unavailable": 503,
}


class BadRequest(Exception):
    """The body does not fit the API: answered as a 400 in that API's error shape."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


@dataclass(slots=True)
class ChatRequest:
    """One model call in canonical (OpenAI Chat Completions) form.

    ``model`` is the name the client asked for, before the policy's aliases.
    ``messages`` are Chat Completions messages (``role``/``content``/
    ``tool_calls``/``tool_call_id``). ``params`` holds what litellm accepts
    besides model and messages: ``max_tokens``, ``temperature``, ``top_p``,
    ``stop``, ``tools`` (Chat Completions function tools), ``tool_choice``,
    ``response_format``, ``parallel_tool_calls``, ``seed``, ``user``... never
    ``stream``/``stream_options`` (the server sets those). ``include_usage``:
    the client asked for a final usage chunk (Chat Completions
    ``stream_options.include_usage``; other dialects always report usage).
    ``extra`` carries what a dialect must echo back in its reply (Responses
    ``instructions``/``metadata``, Anthropic ``stop_sequences`` ...).
    """

    model: str
    messages: list[dict[str, Any]]
    params: dict[str, Any] = field(default_factory=dict)
    stream: bool = False
    include_usage: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class Dialect(Protocol):
    """One API the gateway speaks. Stateless; every method is pure translation."""

    #: Recorded with each call as its endpoint kind: "openai.chat", "openai.responses", "anthropic.messages".
    name: str

    def parse(self, body: Any) -> ChatRequest:
        """Validate and translate a request body (already JSON-decoded). Raises :class:`BadRequest`."""
        ...

    def render(self, req: ChatRequest, completion: dict[str, Any]) -> dict[str, Any]:
        """Translate a canonical chat completion (with ``usage``) into this API's response body."""
        ...

    def render_stream(self, req: ChatRequest, chunks: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
        """Translate canonical chunks into this API's SSE frames (``event:``/``data:`` lines, each
        frame ending in a blank line), from the first (``message_start``, ``response.created`` ...) to
        the last (``message_stop``, ``response.completed``, ``data: [DONE]``). The last canonical
        chunk carries ``usage``; a chunk may carry ``choices[0].finish_reason``."""
        ...

    def error(self, kind: ErrorKind, message: str, param: str | None = None) -> dict[str, Any]:
        """This API's error body (OpenAI ``{"error": {"message", "type", "param", "code"}}``,
        Anthropic ``{"type": "error", "error": {"type", "message"}}``)."""
        ...

    def stream_error(self, kind: ErrorKind, message: str) -> bytes:
        """An error that happens after a stream began, as one SSE frame of this API."""
        ...
