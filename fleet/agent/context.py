"""``Context``: everything an SDK agent can ask of its fleet.

Pausing is cooperative: the supervisor asks, and the agent stops at its next
checkpoint (``await ctx.checkpoint()``, and implicitly before every SDK call
and inside ``ctx.sleep``), acknowledges, and waits there until resumed. That
way an agent is never frozen in the middle of a provider call or holding a
half-written file, which SIGSTOP cannot promise.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from fleet.agent.channel import Channel
from fleet.errors import ApprovalDenied, PolicyDenied


class PolicyView:
    """Read-only attribute access over the effective policy sent by the supervisor.

    ``ctx.policy.budget.usd_per_day`` reads like the pydantic model the
    supervisor validated, without importing pydantic into the agent.
    """

    __slots__ = ("_data",)

    def __init__(self, data: dict[str, Any] | None) -> None:
        object.__setattr__(self, "_data", dict(data or {}))

    def __getattr__(self, name: str) -> Any:
        try:
            value = self._data[name]
        except KeyError:
            raise AttributeError(name) from None
        return PolicyView(value) if isinstance(value, dict) else value

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("the policy is read-only; edit the policy files instead")

    def __getitem__(self, name: str) -> Any:
        return self.__getattr__(name)

    def get(self, name: str, default: Any = None) -> Any:
        try:
            return self.__getattr__(name)
        except AttributeError:
            return default

    def to_dict(self) -> dict[str, Any]:
        return dict(self._data)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PolicyView) and other._data == self._data

    def __repr__(self) -> str:
        return f"PolicyView({self._data!r})"


class Logger:
    """Structured, levelled logging to the agent's ``sdk`` log stream."""

    __slots__ = ("_ctx",)

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def _emit(self, level: str, msg: str, fields: dict[str, Any]) -> None:
        self._ctx._channel.send({"t": "log", "level": level, "msg": str(msg), "fields": fields})
        self._ctx._progress()

    def debug(self, msg: str, **fields: Any) -> None:
        self._emit("debug", msg, fields)

    def info(self, msg: str, **fields: Any) -> None:
        self._emit("info", msg, fields)

    def warning(self, msg: str, **fields: Any) -> None:
        self._emit("warning", msg, fields)

    warn = warning

    def error(self, msg: str, **fields: Any) -> None:
        self._emit("error", msg, fields)

    def __call__(self, msg: str, **fields: Any) -> None:
        self._emit("info", msg, fields)


@dataclass(slots=True)
class Approval:
    """A human's answer to ``ctx.approve``."""

    approved: bool
    reason: str = ""
    decided_by: str = ""
    id: int | None = None

    def __bool__(self) -> bool:
        return self.approved


@dataclass(slots=True)
class Task:
    """A unit of work leased from the fleet's task queue.

    The lease is renewed by the supervisor while this process lives; if the
    agent dies the task goes back to the queue. Finish it exactly once with
    ``done`` or ``fail``.
    """

    id: int
    kind: str
    payload: Any
    attempt: int = 1
    priority: int = 0
    _ctx: Context | None = field(default=None, repr=False)
    _finished: bool = field(default=False, repr=False)

    async def done(self, result: Any = None) -> None:
        await self._finish("task_done", result=result)

    async def fail(self, error: str | BaseException = "failed", *, retry: bool = True) -> None:
        await self._finish("task_fail", error=str(error) or type(error).__name__, retry=retry)

    async def _finish(self, op: str, **args: Any) -> None:
        if self._finished:
            raise RuntimeError(f"task {self.id} is already finished")
        assert self._ctx is not None
        await self._ctx._channel.call(op, id=self.id, **args)
        self._finished = True
        self._ctx._progress()


class Context:
    """The agent's handle on its fleet; passed to ``run(ctx)``."""

    def __init__(self, channel: Channel, init: dict[str, Any]) -> None:
        self._channel = channel
        self.name: str = init.get("agent", "agent")
        self.group: str = init.get("group", self.name)
        self.fleet: str = init.get("fleet", "")
        self._goal: str = init.get("goal") or ""
        self._policy = PolicyView(init.get("policy"))
        self.policy_version: int = int(init.get("policy_version") or 0)
        self.log = Logger(self)
        self._pause_requested = asyncio.Event()
        self._resumed = asyncio.Event()
        self._resumed.set()
        self._paused_acked = False
        self._policy_changed = asyncio.Event()
        self._callbacks: list[Callable[[PolicyView], Any]] = []
        self._last_progress = 0.0
        self._idle_waits = 0
        self._background: set[asyncio.Future[Any]] = set()
        if init.get("paused"):
            self._request_pause()

    # --- what the agent reads --------------------------------------------------
    @property
    def goal(self) -> str:
        return self._goal

    @property
    def policy(self) -> PolicyView:
        return self._policy

    @property
    def paused(self) -> bool:
        return self._pause_requested.is_set()

    # --- pause and checkpoints -------------------------------------------------
    async def checkpoint(self) -> None:
        """Stop here while the operator has the agent paused."""
        if not self._pause_requested.is_set():
            return
        self._ack_paused()
        await self._resumed.wait()

    async def sleep(self, seconds: float) -> None:
        """``asyncio.sleep`` that is also a checkpoint: a pause is acknowledged at once.

        A sleeping agent is idle, so it can report ``paused`` immediately; when the
        sleep ends it stays at the checkpoint until resumed.
        """
        await self.checkpoint()
        async with self._idle():
            await asyncio.sleep(max(0.0, seconds))
        await self.checkpoint()

    @contextlib.asynccontextmanager
    async def _idle(self) -> AsyncIterator[None]:
        self._idle_waits += 1
        if self._pause_requested.is_set():
            self._ack_paused()
        try:
            yield
        finally:
            self._idle_waits -= 1

    def _ack_paused(self) -> None:
        if not self._paused_acked:
            self._paused_acked = True
            self._channel.send({"t": "paused"})

    def _request_pause(self) -> None:
        self._resumed.clear()
        self._pause_requested.set()

    def _resume(self) -> None:
        self._pause_requested.clear()
        if self._paused_acked:
            self._paused_acked = False
        self._channel.send({"t": "resumed"})
        self._resumed.set()

    # --- policy updates ----------------------------------------------------------
    def on_policy_change(self, callback: Callable[[PolicyView], Any]) -> None:
        """Call ``callback(new_policy)`` (sync or async) whenever the operator's edit applies."""
        self._callbacks.append(callback)

    async def policy_changed(self) -> PolicyView:
        """Wait for the next applied policy change and return the new policy."""
        self._policy_changed.clear()
        await self._policy_changed.wait()
        return self._policy

    def _apply_policy(self, msg: dict[str, Any]) -> None:
        self._policy = PolicyView(msg.get("policy"))
        if "goal" in msg:
            self._goal = msg.get("goal") or ""
        self.policy_version = int(msg.get("version") or self.policy_version)
        self._policy_changed.set()
        for cb in list(self._callbacks):
            result = cb(self._policy)
            if asyncio.iscoroutine(result):
                task = asyncio.ensure_future(result)
                self._background.add(task)
                task.add_done_callback(self._background.discard)

    # --- messages from the supervisor ----------------------------------------
    def _on_message(self, msg: dict[str, Any]) -> None:
        t = msg.get("t")
        if t == "pause":
            if not self._pause_requested.is_set():
                self._request_pause()
                if self._idle_waits:
                    self._ack_paused()
            elif self._paused_acked:
                self._channel.send({"t": "paused"})  # idempotent: confirm again
        elif t == "resume":
            self._resume()
        elif t == "policy":
            self._apply_policy(msg)

    def _progress(self) -> None:
        self._last_progress = time.monotonic()

    # --- calls that go to the supervisor -------------------------------------
    async def llm(
        self, messages: list[dict[str, Any]] | str, model: str | None = None, **params: Any
    ) -> dict[str, Any]:
        """One chat completion through the fleet's gateway; an OpenAI-shaped dict.

        Raises ``PolicyDenied`` (or its ``BudgetExhausted`` / ``RateLimited``
        kinds) naming the policy that refused, ``ProviderError`` when the
        provider failed, ``GatewayUnavailable`` when the supervisor is gone.
        """
        await self.checkpoint()
        if isinstance(messages, str):
            messages = [{"role": "user", "content": messages}]
        result = await self._channel.call("llm", messages=messages, model=model, params=params)
        self._progress()
        return result

    async def llm_stream(
        self, messages: list[dict[str, Any]] | str, model: str | None = None, **params: Any
    ) -> AsyncIterator[dict[str, Any]]:
        """Stream a completion: yields OpenAI-shaped chunks as they arrive."""
        await self.checkpoint()
        if isinstance(messages, str):
            messages = [{"role": "user", "content": messages}]
        async for chunk in self._channel.stream("llm_stream", messages=messages, model=model, params=params):
            self._progress()
            yield chunk

    async def approve(self, action: str, details: dict[str, Any] | None = None) -> Approval:
        """Ask a human; waits for approve/deny from the console or CLI (or the timeout → denied)."""
        await self.checkpoint()
        res = await self._channel.call("approve", action=action, details=details or {})
        self._progress()
        return Approval(
            approved=bool(res.get("approved")),
            reason=res.get("reason", ""),
            decided_by=res.get("decided_by", ""),
            id=res.get("id"),
        )

    async def ask(
        self, question: str, choices: list[str] | None = None, timeout: float | None = None
    ) -> str | None:
        """Ask the operator; returns the answer, or None if nobody answered in time.

        The agent shows ``waiting`` meanwhile, and the question is in the
        console's "needs you" queue and ``fleet questions`` (answered with
        ``fleet answer ID TEXT``). With ``choices`` the answer is one of them.
        ``timeout`` defaults to the policy's ``tools.approval_timeout_s``.
        Waiting here is a checkpoint: a pause takes effect at once.
        """
        if not isinstance(question, str) or not question.strip():
            raise ValueError("ask: the question must be a non-empty string")
        if choices is not None:
            choices = list(choices)
            if not choices or not all(isinstance(c, str) and c.strip() for c in choices):
                raise ValueError("ask: choices must be non-empty strings")
            if len({c.casefold() for c in choices}) != len(choices):
                raise ValueError("ask: choices must differ (ignoring case)")
        if timeout is not None and not timeout > 0:
            raise ValueError("ask: timeout must be > 0 seconds, or None for the policy's")
        await self.checkpoint()
        async with self._idle():
            res = await self._channel.call("ask", question=question, choices=choices, timeout=timeout)
        self._progress()
        await self.checkpoint()
        answer = res.get("answer")
        return answer if isinstance(answer, str) else None

    async def tool(
        self, name: str, func: Callable[..., Any] | None = None, /, **args: Any
    ) -> Any:
        """Use a tool under the policy: allowed, denied, or first approved by a human.

        With ``func`` the tool is run (awaited if it is a coroutine function)
        once permitted and its result returned; without it, returns True.
        Raises ``PolicyDenied`` for a denied tool and ``ApprovalDenied`` when a
        human said no (or nobody answered in time).
        """
        await self.checkpoint()
        res = await self._channel.call("tool", name=name, args=_jsonable(args))
        decision = res.get("decision")
        if decision == "deny":
            raise PolicyDenied(res.get("reason") or f"tool {name!r} is denied by policy", "tools")
        if decision == "approve":
            answer = await self.approve(name, {"args": _jsonable(args)})
            if not answer.approved:
                raise ApprovalDenied(
                    f"tool {name!r} was not approved: {answer.reason or 'denied'}", "tools.approve"
                )
        self._progress()
        if func is None:
            return True
        result = func(**args)
        if isinstance(result, Awaitable):
            result = await result
        return result

    def alert(self, message: str, *, severity: str = "warning", rule: str = "agent", **fields: Any) -> None:
        """Raise an alert: persisted, shown in the console and ``fleet status``, pushed to subscribers."""
        self._channel.send({"t": "alert", "message": str(message), "severity": severity, "rule": rule,
                            "fields": _jsonable(fields)})
        self._progress()

    async def add_task(self, kind: str, payload: Any = None, *, priority: int = 0, unique: bool = False) -> int:
        """Queue work for the fleet (any agent whose policy accepts ``kind`` may take it).

        With ``unique``, nothing is added while an identical task (same kind and
        payload) is still queued; its id is returned. A periodic job uses it so
        that its work never piles up behind busy or paused agents, across runs too.
        """
        await self.checkpoint()
        args: dict[str, Any] = {"kind": kind, "payload": payload, "priority": priority}
        if unique:
            args["unique"] = True
        res = await self._channel.call("add_task", **args)
        return int(res["id"])

    def metric(self, name: str, value: float, **labels: Any) -> None:
        """Record a numeric observation (kept in the store, drawn in the console)."""
        self._channel.send({"t": "metric", "name": name, "value": float(value), "labels": labels})
        self._progress()

    async def next_task(self, kinds: list[str] | None = None, timeout: float | None = None) -> Task | None:
        """Lease the next task this agent's policy accepts; waits until one is there.

        Returns None when ``timeout`` passes with nothing to do. Waiting here is a
        checkpoint: a pause takes effect at once.
        """
        await self.checkpoint()
        async with self._idle():
            res = await self._channel.call("next_task", kinds=kinds, timeout=timeout)
        if not res:
            return None
        self._progress()
        return Task(
            id=res["id"],
            kind=res["kind"],
            payload=res.get("payload"),
            attempt=res.get("attempt", 1),
            priority=res.get("priority", 0),
            _ctx=self,
        )


def _jsonable(args: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in args.items():
        out[k] = v if isinstance(v, str | int | float | bool | type(None) | list | dict) else repr(v)
    return out
