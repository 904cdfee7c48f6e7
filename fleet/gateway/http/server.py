"""The gateway over HTTP: OpenAI- and Anthropic-compatible endpoints on loopback.

Agents written with their own clients (the ``openai`` and ``anthropic`` SDKs,
LangChain, the OpenAI Agents SDK, coding CLIs) are started with base-URL
variables pointing here and a per-run token as their API key. This server
finds the agent behind the token, translates the request through the API's
:class:`~fleet.gateway.http.dialect.Dialect` into the canonical form, and
hands it to the very :class:`~fleet.gateway.gateway.Gateway` SDK agents use:
same allow-lists, budgets, rate limits, usage records and pauses. Tool rules
are applied to the canonical form by :class:`~fleet.gateway.http.toolgate.ToolGate`.

Decisions worth knowing:

* **Loopback only, and not for web pages.** It binds 127.0.0.1; a request with
  an ``Origin`` header (every browser ``fetch``/form POST has one) or a ``Host``
  that is not loopback (DNS rebinding) is refused before its token is looked at.
* **Bounded.** Bodies over ``max_body`` get 413 without being buffered;
  connections beyond ``max_connections`` get 503 and are closed; an idle or
  half-sent request is closed after ``idle_timeout_s``; a body must arrive
  within ``body_timeout_s``. aiohttp's low-level server does the HTTP; routing
  is a dict lookup on the path.
* **aiohttp only once a client comes.** It costs ~0.3 s and ~20 MB of the
  supervisor's memory, and many fleets never make an HTTP call. ``start`` binds
  the port itself (the URL is known at once) and watches the socket; the first
  connection waiting in the backlog imports aiohttp in a thread (the loop keeps
  reading the agents' pipes) and hands the socket to aiohttp's server, which
  accepts it then.
* **Refusals clients understand.** A spent daily budget is a 429 with
  ``x-should-retry: false`` (the official clients then raise ``RateLimitError``
  at once instead of retrying); a rate window is a 429 with ``retry-after``;
  a policy refusal is a 403. Messages are redacted with the gateway's redactor.
* **A paused agent's calls wait.** A call from an agent that is paused (or
  pausing) is held until it is resumed, then served under the policy in force
  then — as a paused SDK agent's ``ctx.llm`` waits at its checkpoint; stopped
  meanwhile, it gets a 409 with ``x-should-retry: false``.
* **Streams are settled on what was delivered.** Policy errors surface before
  the first byte (the first chunk is awaited before the 200 is sent); a client
  that goes away is noticed at the next write and the gateway's stream is
  closed, which settles the call on the text delivered so far.
* **No task per request** beyond aiohttp's own; a keep-alive task exists only
  while a tool call waits for a human (SSE comments, or JSON-legal spaces
  before a non-streamed body), so clients with read timeouts keep waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
import math
import os
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fleet.errors import (
    BudgetExhausted,
    FleetError,
    GatewayUnavailable,
    PolicyDenied,
    ProtocolError,
    RateLimited,
)
from fleet.gateway.http.common import ANTHROPIC_ERROR_TYPES
from fleet.gateway.http.dialect import STATUS, BadRequest, ChatRequest, Dialect, ErrorKind
from fleet.gateway.http.identity import AgentTokens, token_from_headers
from fleet.gateway.http.models import listed_models, resolve_model
from fleet.gateway.http.openai_chat import DIALECT as OPENAI_CHAT
from fleet.gateway.http.toolgate import ApproveFn, AuditFn, ToolGate

log = logging.getLogger(__name__)

#: Largest request body accepted (a long agent conversation is well below it).
MAX_BODY = 4 * 1024 * 1024
#: Open connections served at once; more are answered 503 and closed.
MAX_CONNECTIONS = 512
#: An idle keep-alive connection, or one whose request headers stall, is closed after this.
IDLE_TIMEOUT_S = 30.0
#: A request body must arrive within this.
BODY_TIMEOUT_S = 30.0
#: While a tool call waits for a human, something is written this often.
HEARTBEAT_S = 15.0

_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def _host_name(host: str) -> str:
    """``127.0.0.1:8080`` -> ``127.0.0.1``; ``[::1]:8080`` -> ``::1``."""
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if ":" in host else host


@dataclass(frozen=True, slots=True)
class Caller:
    """The agent instance behind a token, with the policy in force at this moment."""

    agent: str
    policy: Any
    policy_version: int = 0
    #: Set while the agent is paused: waits until it is resumed (True) or stopped (False).
    #: Its LLM calls are held until then, as a paused SDK agent's ``ctx.llm`` is.
    held: Callable[[], Awaitable[bool]] | None = None


#: ``lookup(agent)``: the caller, or None when the instance is gone or not running.
Lookup = Callable[[str], Caller | None]


def load_http() -> None:
    """Import the HTTP stack (aiohttp, ~0.3 s and ~20 MB of RSS): when the first client connects."""
    import aiohttp.web  # noqa: F401


def _listen(host: str, port: int) -> socket.socket:
    """A non-blocking TCP socket listening on ``host:port``, as ``loop.create_server`` makes it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if os.name == "posix" and sys.platform != "cygwin":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
        sock.listen(256)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class _Refusal(Exception):
    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.param = param
        self.headers = headers or {}
        self.status = status


class _AnthropicErrors:
    """Error shapes of the Anthropic API, for its paths while its dialect is not installed."""

    name = "anthropic.messages"

    def error(self, kind: ErrorKind, message: str, param: str | None = None) -> dict[str, Any]:
        return {"type": "error", "error": {"type": ANTHROPIC_ERROR_TYPES.get(kind, "api_error"), "message": message}}


def _fits(obj: Any) -> bool:
    methods = ("parse", "render", "render_stream", "error", "stream_error")
    return isinstance(getattr(obj, "name", None), str) and all(callable(getattr(obj, m, None)) for m in methods)


def _load_dialect(module: str) -> Dialect | None:
    """The :class:`Dialect` a module offers: its ``DIALECT``, else the one instance or class
    defined there that fits the protocol; None when the module is not installed."""
    try:
        mod = importlib.import_module(module)
    except ImportError:
        return None
    found = getattr(mod, "DIALECT", None)
    if found is not None and _fits(found):
        return found
    for attr in sorted(vars(mod)):
        value = getattr(mod, attr)
        if attr.startswith("_"):
            continue
        if isinstance(value, type) and value.__module__ == module and _fits(value):
            try:
                return value()
            except TypeError:
                continue
        if not isinstance(value, type) and type(value).__module__ == module and _fits(value):
            return value
    return None


def _kind_of(exc: BaseException) -> tuple[ErrorKind, dict[str, str]]:
    """The API-independent kind of a gateway error, and the headers that go with it."""
    if isinstance(exc, RateLimited) or (isinstance(exc, BudgetExhausted) and exc.policy != "budget.usd_per_day"):
        wait = exc.retry_after_s if exc.retry_after_s is not None else 1.0
        return "rate_limit", {"retry-after": str(max(1, math.ceil(wait)))}
    if isinstance(exc, BudgetExhausted):
        return "budget", {"x-should-retry": "false"}
    if isinstance(exc, PolicyDenied):
        return "permission", {"x-should-retry": "false"}
    if isinstance(exc, ProtocolError):
        return "invalid_request", {}
    if isinstance(exc, GatewayUnavailable):
        return "unavailable", {}
    return "provider", {}


class _RefuseConnection(asyncio.Protocol):
    """Beyond ``max_connections``: a bare 503 and close, before any request is parsed."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        transport.close()


class _KeepAlive:
    """Writes while a tool call waits for a human, so a client's read timeout does not fire.

    A write that fails means the client went away: the request's task is cancelled,
    which withdraws its approval request (expired, ``decided_by = "cancelled"``)
    instead of leaving a human to approve a call nobody will run.
    """

    def __init__(self, request: Any, interval: float, *, sse: bool) -> None:
        self.request = request
        self.interval = interval
        self.sse = sse
        self.response: Any = None
        self._task: asyncio.Task[None] | None = None
        self._owner: asyncio.Task[Any] | None = None

    async def start(self, response: Any = None) -> None:
        from aiohttp import web

        if response is None and self.response is None:
            response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
            await response.prepare(self.request)
        self.response = response or self.response
        if self._task is None:
            self._owner = asyncio.current_task()
            self._task = asyncio.get_running_loop().create_task(self._beat())

    async def _beat(self) -> None:
        beat = b": fleet: waiting for a human approval\n\n" if self.sse else b" "
        transport = self.request.transport
        while True:
            await asyncio.sleep(self.interval)
            try:
                if transport is None or transport.is_closing():
                    raise ConnectionResetError("client went away")
                await self.response.write(beat)
            except Exception:
                if self._owner is not None:
                    self._owner.cancel()
                return

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None


class GatewayServer:
    """HTTP endpoints in front of a :class:`~fleet.gateway.gateway.Gateway`.

    Args:
        gateway: the fleet's gateway (``complete``, ``stream``, ``redactor``).
        lookup: the current caller for an agent instance name (see :class:`Caller`).
        approve: asks a human about a held tool call.
        audit: records tool decisions.
        tokens: the token table (one is made if not given).
        port: 0 for a free port.
    """

    def __init__(
        self,
        gateway: Any,
        *,
        lookup: Lookup,
        approve: ApproveFn,
        audit: AuditFn,
        tokens: AgentTokens | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        max_body: int = MAX_BODY,
        max_connections: int = MAX_CONNECTIONS,
        idle_timeout_s: float = IDLE_TIMEOUT_S,
        body_timeout_s: float = BODY_TIMEOUT_S,
        heartbeat_s: float = HEARTBEAT_S,
    ) -> None:
        self.gateway = gateway
        self.tokens = tokens if tokens is not None else AgentTokens()
        self._lookup = lookup
        self._approve = approve
        self._audit = audit
        self.host = host
        self.port = port
        self.max_body = max_body
        self.max_connections = max_connections
        self.idle_timeout_s = idle_timeout_s
        self.body_timeout_s = body_timeout_s
        self.heartbeat_s = heartbeat_s
        self._server: asyncio.Server | None = None
        self._web: Any = None
        #: The listening socket until the HTTP stack takes it over (first connection).
        self._sock: socket.socket | None = None
        self._starting: asyncio.Task[None] | None = None
        self._dialects: dict[str, Dialect | None] = {}
        self.requests = 0
        #: Calls waiting now for their paused agent to be resumed.
        self.held = 0

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (the Anthropic base URL; OpenAI clients add ``/v1``)."""
        return f"http://{self.host}:{self.port}"

    @property
    def connections(self) -> int:
        return len(self._web.connections) if self._web is not None else 0

    async def start(self) -> None:
        """Bind (loopback only) and listen; the HTTP stack starts with the first connection.

        The port is known (and taken) at once, so the URL and the agents' variables do
        not wait for it. Raises ``OSError`` if the port is taken.
        """
        if self.host not in ("127.0.0.1", "::1"):
            raise ValueError("the gateway's HTTP endpoints listen on loopback only")
        sock = _listen(self.host, self.port)
        self._sock = sock
        self.port = sock.getsockname()[1]
        asyncio.get_running_loop().add_reader(sock.fileno(), self._first_connection)

    def _first_connection(self) -> None:
        """A client waits in the backlog: stop watching, start the HTTP stack on the socket."""
        if self._sock is None or self._starting is not None:
            return
        loop = asyncio.get_running_loop()
        loop.remove_reader(self._sock.fileno())
        self._starting = loop.create_task(self._serve(self._sock), name="gateway-http-start")

    async def _serve(self, sock: socket.socket) -> None:
        """Import aiohttp off the loop (pipes keep being read meanwhile), then accept on ``sock``.

        Those waiting in the backlog are accepted as soon as the server is serving.
        """
        try:
            await asyncio.to_thread(load_http)
            from aiohttp import web

            webserver = web.Server(
                self._handle,
                keepalive_timeout=self.idle_timeout_s,
                lingering_time=2.0,
                access_log=None,
                max_field_size=16384,
            )

            def factory() -> asyncio.Protocol:
                if len(webserver._connections) >= self.max_connections:
                    return _RefuseConnection()
                return webserver()

            self._web = webserver
            self._server = await asyncio.get_running_loop().create_server(factory, sock=sock, backlog=256)
            self._sock = None  # the server owns (and closes) it now
        except asyncio.CancelledError:
            raise
        except Exception:
            # Without an HTTP stack nothing would ever accept: refuse from now on instead.
            log.exception("the gateway's HTTP endpoints could not start on %s", self.url)
            self._close_socket()

    def _close_socket(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(sock.fileno())
            sock.close()

    async def close(self) -> None:
        """Stop listening and close connections, whether or not a client ever came."""
        starting, self._starting = self._starting, None
        if starting is not None and not starting.done():
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting
        self._close_socket()
        if self._server is not None:
            self._server.close()
            if self._web is not None:
                self._web.pre_shutdown()
                with contextlib.suppress(Exception):
                    await self._web.shutdown(1.0)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None

    def agent_env(self, token: str, *, vendor: bool = True) -> dict[str, str]:
        """Variables that point an agent's clients here, with ``token`` as their key.

        ``FLEET_GATEWAY_URL``/``FLEET_GATEWAY_TOKEN`` always; with ``vendor`` also
        the ones the common clients read by themselves.
        """
        env = {"FLEET_GATEWAY_URL": self.url, "FLEET_GATEWAY_TOKEN": token}
        if vendor:
            env.update(
                OPENAI_BASE_URL=f"{self.url}/v1",
                OPENAI_API_BASE=f"{self.url}/v1",
                OPENAI_API_KEY=token,
                ANTHROPIC_BASE_URL=self.url,
                ANTHROPIC_API_KEY=token,
                OPENAI_AGENTS_DISABLE_TRACING="1",
            )
        return env

    # ------------------------------------------------------------------ routing

    def _dialect(self, module: str) -> Dialect | None:
        if module not in self._dialects:
            self._dialects[module] = _load_dialect(module)
        return self._dialects[module]

    def _shape_for(self, path: str) -> Any:
        """The dialect whose error shape answers ``path`` (even when refusing it)."""
        if path.startswith("/v1/messages"):
            return self._dialect("fleet.gateway.http.anthropic") or _AnthropicErrors()
        if path.startswith("/v1/responses"):
            return self._dialect("fleet.gateway.http.responses") or OPENAI_CHAT
        return OPENAI_CHAT

    async def _handle(self, request: Any) -> Any:
        self.requests += 1
        path = request.path
        if path.startswith("/v1/models") and "anthropic-version" in request.headers:
            shape: Any = _AnthropicErrors()
        else:
            shape = self._shape_for(path)
        try:
            caller = self._admit(request)
            method = request.method
            if method == "POST" and caller.held is not None and path != "/v1/messages/count_tokens":
                caller = await self._hold(request, caller)
            if method == "POST":
                if path == "/v1/chat/completions":
                    return await self._chat(request, caller, OPENAI_CHAT)
                if path == "/v1/messages":
                    return await self._chat(request, caller, self._need("fleet.gateway.http.anthropic", path))
                if path == "/v1/responses":
                    return await self._chat(request, caller, self._need("fleet.gateway.http.responses", path))
                if path == "/v1/messages/count_tokens":
                    return await self._count_tokens(request, caller)
            elif method == "GET" and (path == "/v1/models" or path.startswith("/v1/models/")):
                return self._models(request, caller, path)
            raise _Refusal("not_found", f"no route for {method} {path}")
        except _Refusal as exc:
            return self._error(shape, exc.kind, str(exc), exc.param, exc.headers, exc.status)
        except Exception as exc:  # a bug here must not kill the connection without an answer
            log.exception("gateway HTTP %s %s failed", request.method, path)
            return self._error(shape, "provider", f"internal error: {type(exc).__name__}: {exc}")

    def _need(self, module: str, path: str) -> Dialect:
        dialect = self._dialect(module)
        if dialect is None:
            raise _Refusal("not_found", f"{path} is not available in this version of the fleet", status=501)
        return dialect

    def _admit(self, request: Any) -> Caller:
        """Refuse web pages and non-loopback hosts, then find the agent behind the token."""
        headers = request.headers
        if "Origin" in headers:
            raise _Refusal("permission", "requests from web pages (with an Origin header) are refused")
        if _host_name(request.host or "") not in _LOOPBACK_HOSTS:
            raise _Refusal("permission", "the fleet's gateway answers on loopback addresses only")
        token = token_from_headers(headers.get("Authorization"), headers.get("x-api-key"))
        if token is None:
            raise _Refusal(
                "authentication",
                "no API key: the fleet gives each agent a token in OPENAI_API_KEY "
                "and ANTHROPIC_API_KEY (send it as a Bearer token or x-api-key)",
            )
        agent = self.tokens.resolve(token)
        caller = self._lookup(agent) if agent is not None else None
        if caller is None:
            raise _Refusal(
                "authentication", "unknown or expired API key: it is not the token of a running agent of this fleet"
            )
        return caller

    async def _hold(self, request: Any, caller: Caller) -> Caller:
        """A paused agent's call waits for its resume, then goes on under the policy in force then.

        Nothing is written while it waits (the answer's status is not known yet): a
        client whose own timeout is shorter than the pause times out as usual. A
        client that goes away is noticed within ``heartbeat_s``.
        """
        assert caller.held is not None
        transport = request.transport
        resumed = asyncio.ensure_future(caller.held())
        self.held += 1
        try:
            while not resumed.done():
                await asyncio.wait({resumed}, timeout=self.heartbeat_s)
                if not resumed.done() and (transport is None or transport.is_closing()):
                    raise _Refusal("unavailable", "the client went away while its paused agent was held")
        finally:
            self.held -= 1
            resumed.cancel()
        again = self._lookup(caller.agent) if resumed.result() else None
        if again is None or again.held is not None:
            raise _Refusal(
                "permission",
                f"{caller.agent} was stopped while this call waited for it to be resumed",
                headers={"x-should-retry": "false"},
                status=409,
            )
        return again

    def _error(
        self,
        shape: Any,
        kind: ErrorKind,
        message: str,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        status: int | None = None,
    ) -> Any:
        from aiohttp import web

        message = self.gateway.redactor(message) if self.gateway is not None else message
        body = json.dumps(shape.error(kind, message, param)).encode()
        return web.Response(status=status or STATUS[kind], body=body, content_type="application/json", headers=headers)

    # ------------------------------------------------------------------ bodies

    async def _body(self, request: Any) -> Any:
        length = request.content_length
        if length is not None and length > self.max_body:
            raise _Refusal("too_large", f"request body of {length} bytes is over the limit of {self.max_body}")
        buf = bytearray()
        try:
            async with asyncio.timeout(self.body_timeout_s):
                while True:
                    chunk = await request.content.readany()
                    if not chunk:
                        break
                    buf += chunk
                    if len(buf) > self.max_body:
                        raise _Refusal("too_large", f"request body is over the limit of {self.max_body} bytes")
        except TimeoutError:
            raise _Refusal(
                "invalid_request", f"request body not received within {self.body_timeout_s:g}s", status=408
            ) from None
        try:
            return json.loads(buf)
        except ValueError as exc:
            raise _Refusal("invalid_request", f"the body is not valid JSON: {exc}") from None

    # ------------------------------------------------------------------ endpoints

    def _models(self, request: Any, caller: Caller, path: str) -> Any:
        from aiohttp import web

        names = listed_models(caller.policy.llm)
        anthropic = "anthropic-version" in request.headers
        if path != "/v1/models":
            wanted = path[len("/v1/models/") :]
            target = resolve_model(caller.policy.llm, wanted)
            if not any(_allowed(caller.policy, n) for n in (target,)):
                raise _Refusal("not_found", f"model {wanted!r} is not available to {caller.agent}")
            names = [wanted]
        if anthropic:
            data = [{"type": "model", "id": n, "display_name": n, "created_at": "2025-01-01T00:00:00Z"} for n in names]
            body = {
                "data": data,
                "has_more": False,
                "first_id": names[0] if names else None,
                "last_id": names[-1] if names else None,
            }
            if path != "/v1/models":
                body = data[0]
        else:
            data = [{"id": n, "object": "model", "created": 0, "owned_by": "fleet"} for n in names]
            body = {"object": "list", "data": data} if path == "/v1/models" else data[0]
        return web.json_response(body)

    def _gate(self, caller: Caller, dialect: Dialect, model: str) -> ToolGate:
        return ToolGate(
            caller.agent,
            caller.policy,
            approve=self._approve,
            audit=self._audit,
            endpoint=dialect.name,
            policy_version=caller.policy_version,
            model=model,
        )

    async def _chat(self, request: Any, caller: Caller, dialect: Dialect) -> Any:
        from aiohttp import web

        body = await self._body(request)
        try:
            req = dialect.parse(body)
        except BadRequest as exc:
            raise _Refusal("invalid_request", str(exc), exc.param) from None
        model = resolve_model(caller.policy.llm, req.model)
        gate = self._gate(caller, dialect, model)
        params = gate.filter_request(req.params)
        if req.stream:
            return await self._stream(request, caller, dialect, req, model, params, gate)
        keep = _KeepAlive(request, self.heartbeat_s, sse=False)
        gate.on_hold = keep.start
        try:
            completion = await self.gateway.complete(
                caller.agent,
                caller.policy,
                req.messages,
                model,
                params,
                policy_version=caller.policy_version,
                endpoint=dialect.name,
            )
            completion = await gate.gate_completion(completion)
        except FleetError as exc:
            if keep.response is not None:  # pragma: no cover - errors come before any hold
                raise
            kind, headers = _kind_of(exc)
            raise _Refusal(kind, str(exc), headers=headers) from None
        finally:
            keep.stop()
        payload = json.dumps(dialect.render(req, completion), ensure_ascii=False).encode()
        if keep.response is not None:  # a 200 already went out while a human decided
            with contextlib.suppress(ConnectionError):
                await keep.response.write(payload)
                await keep.response.write_eof()
            return keep.response
        return web.Response(body=payload, content_type="application/json")

    async def _stream(
        self,
        request: Any,
        caller: Caller,
        dialect: Dialect,
        req: ChatRequest,
        model: str,
        params: dict[str, Any],
        gate: ToolGate,
    ) -> Any:
        from aiohttp import web

        stream = self.gateway.stream(
            caller.agent,
            caller.policy,
            req.messages,
            model,
            params,
            policy_version=caller.policy_version,
            endpoint=dialect.name,
        )
        try:
            first: dict[str, Any] | None = await anext(stream)
        except StopAsyncIteration:
            first = None
        except FleetError as exc:
            kind, headers = _kind_of(exc)
            raise _Refusal(kind, str(exc), headers=headers) from None
        response = web.StreamResponse(
            status=200,
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        await response.prepare(request)
        keep = _KeepAlive(request, self.heartbeat_s, sse=True)

        async def hold() -> None:
            await keep.start(response)

        gate.on_hold = hold
        chunks = _prepend(first, stream)
        gated = gate.gate_stream(chunks)
        frames = dialect.render_stream(req, gated)
        try:
            async for frame in frames:
                await response.write(frame)
        except ConnectionError:
            pass  # the client went away: closing the stream below settles what it got
        except FleetError as exc:
            kind, _ = _kind_of(exc)
            with contextlib.suppress(ConnectionError):
                await response.write(dialect.stream_error(kind, self.gateway.redactor(str(exc))))
        finally:
            keep.stop()
            for gen in (frames, gated, chunks, stream):
                with contextlib.suppress(Exception):
                    await gen.aclose()  # type: ignore[attr-defined]
        with contextlib.suppress(ConnectionError):
            await response.write_eof()
        return response

    async def _count_tokens(self, request: Any, caller: Caller) -> Any:
        """Anthropic ``count_tokens``: an estimate of the prompt (no tokenizer, no litellm), for a
        model this agent may use. The dialect's own ``count_tokens`` when it has one."""
        from aiohttp import web

        from fleet.gateway.gateway import estimate_prompt_tokens

        dialect = self._need("fleet.gateway.http.anthropic", "/v1/messages/count_tokens")
        body = await self._body(request)
        asked = body.get("model") if isinstance(body, dict) else None
        model = resolve_model(caller.policy.llm, asked if isinstance(asked, str) else None)
        if not _allowed(caller.policy, model):
            raise _Refusal("permission", f"model {model!r} is not allowed for {caller.agent}", "model")
        own = getattr(dialect, "count_tokens", None)
        try:
            if callable(own):
                return web.json_response(own(body))
            req = dialect.parse({"max_tokens": 1, **body} if isinstance(body, dict) else body)
        except BadRequest as exc:
            raise _Refusal("invalid_request", str(exc), exc.param) from None
        tokens = estimate_prompt_tokens(req.messages)
        tools = req.params.get("tools")
        if tools:
            tokens += math.ceil(len(json.dumps(tools)) / 4)
        return web.json_response({"input_tokens": tokens})


def _allowed(policy: Any, model: str) -> bool:
    from fnmatch import fnmatchcase

    return any(fnmatchcase(model, p) for p in (policy.llm.models or ()))


async def _prepend(first: dict[str, Any] | None, rest: AsyncIterator[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    if first is None:
        return
    yield first
    async for chunk in rest:
        yield chunk
