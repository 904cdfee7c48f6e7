"""The supervisor's end of an SDK agent's control channel (fd 3).

Everything that arrives is untrusted: a line that is not JSON, not an object,
too long or of an unknown type is answered with an error (when it has an id)
and noted in the agent's ``fleet`` log stream; it never raises into the loop.
Calls are dispatched as tasks so a slow LLM call never holds up a pause ack.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from fleet.errors import ProtocolError, error_to_wire
from fleet.flow import ReadGate
from fleet.jsonlines import LineBuffer, dumps, loads

#: Agent lines are small; an SDK call carrying a big prompt still fits.
MAX_AGENT_LINE = 8 * 1024 * 1024
#: SDK calls of one agent handled at once (tasks taken, LLM calls...); more wait unread.
MAX_AGENT_CALLS = 256

CallHandler = Callable[[str, dict[str, Any], Callable[[dict[str, Any]], None]], Awaitable[Any]]


class AgentLink(asyncio.Protocol):
    """JSON lines to and from one agent process."""

    def __init__(
        self,
        on_message: Callable[[dict[str, Any]], None],
        on_call: CallHandler,
        on_note: Callable[[str], None],
        on_lost: Callable[[], None],
    ) -> None:
        self._on_message = on_message
        self._on_call = on_call
        self._on_note = on_note
        self._on_lost = on_lost
        self._buf = LineBuffer(MAX_AGENT_LINE)
        self._tasks: set[asyncio.Task[None]] = set()
        self.transport: asyncio.Transport | None = None
        self.bad_messages = 0
        self._early: list[bytes] = []  # sent before the transport was attached
        #: Calls in flight and unread replies are bounded: past either, the agent is not read.
        self._gate = ReadGate(self._handle_line, max_inflight=MAX_AGENT_CALLS)
        self._retired = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._gate.attach(self.transport)  # type: ignore[arg-type]
        for data in self._early:
            self.transport.write(data)
        self._early.clear()

    def retire(self) -> None:
        """The agent exited: read what it logged before (even under backpressure), nothing else."""
        self._retired = True
        self._gate.hold(False)

    def pause(self) -> None:
        """Store backpressure (``LogHub``): read nothing more from the agent, as its pipes."""
        self._gate.hold(True)

    def resume(self) -> None:
        self._gate.hold(False)

    def pause_writing(self) -> None:  # the agent is not reading what it is sent: stop reading it
        self._gate.pause_writing()

    def resume_writing(self) -> None:
        self._gate.resume_writing()

    def data_received(self, data: bytes) -> None:
        lines, dropped = self._buf.feed(data)
        if dropped:
            self._bad(f"dropped {dropped} control message(s) over {MAX_AGENT_LINE} bytes")
        for raw in lines:
            self._gate.offer(raw)

    def _handle_line(self, raw: bytes) -> bool:
        """One line from the agent (``ReadGate``): True if it started a call that is still running."""
        try:
            msg = loads(raw)
        except ValueError as exc:
            self._bad(f"control message is not JSON ({exc}): {raw[:80]!r}")
            return False
        if not isinstance(msg, dict):
            self._bad(f"control message is not an object: {raw[:80]!r}")
            return False
        if self._retired and msg.get("t") not in ("log", "metric", "alert"):
            return False  # the agent is gone: only what it logged still counts
        if msg.get("t") == "call":
            return self._start_call(msg)
        try:
            self._on_message(msg)
        except ProtocolError as exc:
            self._bad(str(exc))
        return False

    def _bad(self, note: str) -> None:
        self.bad_messages += 1
        self._on_note(note)

    def _start_call(self, msg: dict[str, Any]) -> bool:
        rid = msg.get("id")
        op = msg.get("op")
        args = msg.get("args")
        if not isinstance(rid, int) or not isinstance(op, str) or not isinstance(args, dict):
            self._bad(f"malformed call: {json.dumps(msg)[:120]}")
            if isinstance(rid, int):
                self.reply(rid, error=ProtocolError("malformed call: needs id, op and args"))
            return False
        task = asyncio.ensure_future(self._run_call(rid, op, args))
        self._tasks.add(task)
        task.add_done_callback(self._call_done)
        return True

    def _call_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._gate.done()

    async def _run_call(self, rid: int, op: str, args: dict[str, Any]) -> None:
        def push(data: dict[str, Any]) -> None:
            self.send({"t": "chunk", "id": rid, "data": data})

        try:
            result = await self._on_call(op, args, push)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.reply(rid, error=exc)
        else:
            self.reply(rid, result=result)

    def reply(self, rid: int, result: Any = None, error: BaseException | None = None) -> None:
        if error is not None:
            self.send({"t": "reply", "id": rid, "ok": False, "error": error_to_wire(error)})
        else:
            self.send({"t": "reply", "id": rid, "ok": True, "result": result})

    def send(self, msg: dict[str, Any]) -> None:
        if self.transport is None:
            self._early.append(dumps(msg))
        elif not self.transport.is_closing():
            self.transport.write(dumps(msg))

    def connection_lost(self, exc: Exception | None) -> None:
        self._gate.close()
        for t in list(self._tasks):
            t.cancel()
        self._on_lost()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
