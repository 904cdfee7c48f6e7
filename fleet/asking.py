"""Agents that need their operator: input written to an agent, and questions agents ask.

Two ways an agent waits for a human, one state (``waiting``) and one queue:

- a command agent reads its stdin (a pipe or a pseudo-terminal the supervisor
  holds): ``send`` writes a line to it (``fleet send NAME TEXT``, the console's
  ``i``), or end-of-file;
- an SDK agent asks (``await ctx.ask(question, choices=...)``): the question is
  listed by ``questions`` (``fleet questions``, the console's "needs you" queue)
  and answered by ``answer`` (``fleet answer ID TEXT``). Nobody answering within
  its timeout (its own, else the policy's ``tools.approval_timeout_s``) gives
  the agent ``None``: like an approval, an unattended fleet does not guess.

Everything an operator writes is audited (who, what, to which agent) and shown
in the agent's log, stream ``input``. Text with control characters is refused
unless sent ``raw`` (as typed): a stray escape sequence written to a program's
terminal is an instruction to it, not an answer.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fleet.errors import AgentError, FleetError, ProtocolError
from fleet.records import AgentState

if TYPE_CHECKING:
    from fleet.supervisor.core import Supervisor
    from fleet.supervisor.instance import AgentInstance

S = AgentState
#: Bytes one ``send`` may write: an answer, not a file (and under PIPE_BUF, so it is
#: written in one piece or not at all).
MAX_SEND = 4096
MAX_QUESTION = 2000
MAX_CHOICES = 20
MAX_CHOICE = 200
#: Questions one agent may have open at once.
MAX_OPEN_PER_AGENT = 8
MAX_ANSWER = 4096


def control_chars(text: str) -> list[str]:
    """The control characters in ``text`` (tab aside), as escapes: ``["\\x1b", "\\n"]``."""
    out: list[str] = []
    for ch in text:
        if ch != "\t" and unicodedata.category(ch) == "Cc":
            esc = repr(ch)[1:-1]
            if esc not in out:
                out.append(esc)
    return out


def one_instance(sup: Supervisor, name: str) -> AgentInstance:
    """The instance ``name`` designates; a group of replicas must be narrowed to one."""
    insts = sup.select([name])
    if len(insts) > 1:
        raise AgentError(f"{name!r} has {len(insts)} replicas: name one ({insts[0].name}, …)")
    return insts[0]


# --- questions -------------------------------------------------------------------------
@dataclass(eq=False)
class Question:
    id: int
    agent: str
    question: str
    choices: list[str]
    asked_at: float
    timeout_s: float
    future: asyncio.Future[tuple[str | None, str]] = field(repr=False)

    def wire(self, status: str = "pending", **extra: Any) -> dict[str, Any]:
        return {
            "id": self.id,
            "agent": self.agent,
            "question": self.question,
            "choices": self.choices,
            "asked_at": self.asked_at,
            "created": self.asked_at,
            "timeout_s": self.timeout_s,
            "expires_at": self.asked_at + self.timeout_s,
            "status": status,
            **extra,
        }


def check_question(question: Any, choices: Any) -> tuple[str, list[str]]:
    """Validate what an agent asks; raises ``ProtocolError`` naming what is wrong."""
    if not isinstance(question, str) or not question.strip():
        raise ProtocolError("ask: the question must be a non-empty string")
    if len(question) > MAX_QUESTION:
        raise ProtocolError(f"ask: the question is over {MAX_QUESTION} characters")
    if choices is None:
        return question, []
    if not isinstance(choices, list) or not all(isinstance(c, str) and c.strip() for c in choices):
        raise ProtocolError("ask: choices must be a list of non-empty strings")
    if len(choices) > MAX_CHOICES or any(len(c) > MAX_CHOICE for c in choices):
        raise ProtocolError(f"ask: at most {MAX_CHOICES} choices of at most {MAX_CHOICE} characters")
    if len({c.casefold() for c in choices}) != len(choices):
        raise ProtocolError("ask: choices must differ (ignoring case)")
    return question, list(choices)


def match_choice(text: str, choices: list[str]) -> str:
    """The choice ``text`` names (exactly, ignoring case, or by its number from 1)."""
    if text in choices:
        return text
    folded = [c for c in choices if c.casefold() == text.strip().casefold()]
    if folded:
        return folded[0]
    if text.strip().isdigit() and 1 <= int(text.strip()) <= len(choices):
        return choices[int(text.strip()) - 1]
    raise FleetError(f"answer one of: {', '.join(choices)} (or its number)")


class QuestionBook:
    """Open questions of the running fleet (in memory; every change is a persisted event)."""

    def __init__(self, publish: Callable[[str, dict[str, Any]], None], clock: Callable[[], float] = time.time) -> None:
        self._publish = publish
        self._clock = clock
        self._ids = itertools.count(1)
        self._open: dict[int, Question] = {}

    def pending(self) -> list[dict[str, Any]]:
        """Open questions, oldest first."""
        return [q.wire() for q in sorted(self._open.values(), key=lambda q: q.id)]

    async def ask(self, agent: str, question: str, choices: list[str], timeout_s: float) -> tuple[str | None, str]:
        """Wait for an answer: ``(answer, answered_by)``, or ``(None, "timeout")``."""
        if sum(1 for q in self._open.values() if q.agent == agent) >= MAX_OPEN_PER_AGENT:
            raise FleetError(f"{agent} already has {MAX_OPEN_PER_AGENT} questions open")
        fut: asyncio.Future[tuple[str | None, str]] = asyncio.get_running_loop().create_future()
        q = Question(next(self._ids), agent, question, choices, self._clock(), timeout_s, fut)
        self._open[q.id] = q
        self._publish(agent, q.wire())
        try:
            return await asyncio.wait_for(asyncio.shield(fut), timeout_s)
        except TimeoutError:
            if fut.done():
                return fut.result()
            self._close(q, "expired", answer=None, answered_by="timeout")
            return None, "timeout"
        except asyncio.CancelledError:  # the agent went away
            if q.id in self._open:
                self._close(q, "cancelled", answer=None, answered_by="cancelled")
            raise

    def answer(self, id: int, text: str, by: str) -> dict[str, Any]:
        q = self._open.get(id)
        if q is None:
            raise FleetError(f"no open question with id {id}")
        if not isinstance(text, str):
            raise ProtocolError("answer: text must be a string")
        if len(text) > MAX_ANSWER:
            raise FleetError(f"an answer is at most {MAX_ANSWER} characters")
        if q.choices:
            text = match_choice(text, q.choices)
        return self._close(q, "answered", answer=text, answered_by=by)

    def _close(self, q: Question, status: str, *, answer: str | None, answered_by: str) -> dict[str, Any]:
        self._open.pop(q.id, None)
        if not q.future.done():
            q.future.set_result((answer, answered_by))
        data = q.wire(status, answer=answer, answered_by=answered_by, answered_at=self._clock())
        self._publish(q.agent, data)
        return data


# --- wiring ----------------------------------------------------------------------------
def log_input(sup: Supervisor, inst: AgentInstance, by: str, text: str) -> None:
    """What an operator wrote to an agent, in the agent's log (stream ``input``)."""
    run_id = inst.run.run_id if inst.run else 0
    line = f"⌨ {by}: {text}".replace("\r", "\\r").replace("\n", "\\n")[:2000]
    sup.loghub.add(inst.name, run_id, "input", 1, line + "\n", time.time())


def send(sup: Supervisor, name: str, text: str, eof: bool, raw: bool, by: str) -> dict[str, Any]:
    """The ``send`` op: write ``text`` (a line, or as typed with ``raw``) and/or end-of-file to an agent."""
    inst = one_instance(sup, name)
    if not eof and not text and raw:
        raise FleetError("nothing to send")
    bad = [] if raw else control_chars(text)
    if bad:
        raise FleetError(f"the text has control characters ({' '.join(bad)}); "
                         "send it as typed with --raw")
    payload = b""
    if text or not eof:  # an empty line is an answer too (enter)
        data = text if raw else text + ("\r" if inst.spec.tty else "\n")
        payload = data.encode("utf-8", "surrogateescape")
    if len(payload) > MAX_SEND:
        raise FleetError(f"at most {MAX_SEND} bytes per send (this is {len(payload)})")
    waiting = inst.state is S.WAITING
    if not inst.state.alive:
        raise AgentError(f"{inst.name} is {inst.state.value}: no process reads its input")
    written = 0
    if payload:
        written = inst.write_input(payload)
        log_input(sup, inst, by, text if not raw else repr(text)[1:-1])
    if eof:
        if inst.spec.tty:  # a terminal has no end to close: ^D at the start of a line is its EOF
            written += inst.write_input(b"\x04")
        else:
            inst.close_input()
        log_input(sup, inst, by, "<end of input>")
    return {"agents": [inst.name], "bytes": written, "eof": eof, "waiting": waiting, "state": inst.state.value}


def attach(sup: Supervisor) -> QuestionBook:
    """Give ``sup`` its question book and the SDK's ``ask`` (the ops ``send``, ``questions``
    and ``answer`` are declared in :mod:`fleet.control.ops`)."""
    book = QuestionBook(lambda agent, data: sup.publish("question", agent, data))
    sup.services.questions = book

    async def agent_ask(inst: AgentInstance, args: dict[str, Any], push: Callable[..., None]) -> Any:
        question, choices = check_question(args.get("question"), args.get("choices"))
        timeout = args.get("timeout")
        if timeout is None:
            timeout_s = float(inst.policy.tools.approval_timeout_s)
        elif isinstance(timeout, int | float) and not isinstance(timeout, bool) and timeout > 0:
            timeout_s = float(timeout)
        else:
            raise ProtocolError("ask: timeout must be a number of seconds > 0, or None")
        inst.begin_ask(question)
        try:
            answer, by = await book.ask(inst.name, question, choices, timeout_s)
        finally:
            inst.end_ask(question)
        return {"answer": answer, "answered_by": by}

    sup.sdk_calls["ask"] = agent_ask
    return book
