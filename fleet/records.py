"""Plain records that cross module boundaries: log chunks, events, agent states.

Logs travel as *chunks*, never as one object per line: a chunk is what one read
of one pipe produced (complete lines only), tagged once with agent instance,
run, stream, the number of its first line and the read time. Every line in it
shares that timestamp. This keeps the ingestion path at a few Python
operations per 64 KiB instead of per line (see issue 10's measurements).
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any


class AgentState(str, enum.Enum):
    STARTING = "starting"
    RUNNING = "running"
    #: Alive and blocked on its operator: reading its stdin (command agents, tty agents)
    #: or asking with ``ctx.ask`` (SDK agents).
    WAITING = "waiting"
    PAUSING = "pausing"
    PAUSED = "paused"
    STOPPING = "stopping"
    STOPPED = "stopped"
    EXITED = "exited"
    CRASHED = "crashed"
    BACKOFF = "backoff"
    CRASH_LOOP = "crash-loop"

    def __str__(self) -> str:
        return self.value

    @property
    def alive(self) -> bool:
        return self in _ALIVE


_ALIVE = {AgentState.STARTING, AgentState.RUNNING, AgentState.WAITING, AgentState.PAUSING, AgentState.PAUSED,
          AgentState.STOPPING}

#: Log streams. ``sdk`` holds structured ``ctx.log`` records, ``fleet`` the
#: supervisor's own notes about an agent (started, exited with 1, ...), ``input``
#: what an operator wrote to the agent's stdin (``fleet send``, the console's ``i``).
STREAMS = ("stdout", "stderr", "sdk", "fleet", "input")


@dataclass(slots=True)
class LogChunk:
    """Complete lines read in one go from one stream of one agent instance.

    ``data`` holds the bytes as the agent wrote them (secrets redacted), ending
    with ``b"\\n"``: ``count`` lines numbered ``first_seq .. first_seq + count - 1``.
    It may be a read-only view of the pipe read they came in (no copy on the
    way to disk). They are stored as they are; ``text`` decodes them (invalid
    UTF-8 replaced) only where a person or a search looks. A ``str`` given for
    ``data`` is encoded. Numbers are per agent instance, shared by all
    its streams and continued across runs, so a gap always means loss.
    """

    agent: str
    run_id: int
    stream: str
    first_seq: int
    count: int
    ts: float
    data: bytes | memoryview

    def __post_init__(self) -> None:
        if isinstance(self.data, str):
            self.data = self.data.encode("utf-8", "replace")

    @property
    def text(self) -> str:
        return str(self.data, "utf-8", "replace")

    def lines(self) -> list[str]:
        return self.text.split("\n")[: self.count]

    def to_wire(self) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "run_id": self.run_id,
            "stream": self.stream,
            "first_seq": self.first_seq,
            "count": self.count,
            "ts": self.ts,
            "text": self.text,
        }

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> LogChunk:
        return cls(*(d[k] for k in ("agent", "run_id", "stream", "first_seq", "count", "ts", "text")))


@dataclass(slots=True)
class LogLine:
    """One line read back from the store or a ring (history, search results)."""

    agent: str
    seq: int
    ts: float
    stream: str
    text: str
    run_id: int = 0

    def to_wire(self) -> dict[str, Any]:
        # A dict literal, not ``asdict``: its recursive deep copy cost ~25 us a line,
        # most of the time of reading 200 000 lines back with ``fleet logs``.
        return {"agent": self.agent, "seq": self.seq, "ts": self.ts, "stream": self.stream, "text": self.text,
                "run_id": self.run_id}


@dataclass(slots=True)
class Event:
    """Something that happened, persisted and pushed to subscribers.

    ``kind`` is one of: state, restart, alert, alert_cleared, policy_applied,
    policy_error, approval, audit, task, budget, run (a supervisor start),
    usage, stats, fleet. ``data`` is JSON-serialisable.
    """

    kind: str
    agent: str | None
    data: dict[str, Any] = field(default_factory=dict)
    ts: float = 0.0
    id: int | None = None

    def to_wire(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class UsageRecord:
    """One LLM call as the gateway saw it (also refused and failed ones)."""

    agent: str
    model: str
    tokens_in: int
    tokens_out: int
    cost_usd: float
    latency_s: float
    outcome: str  # ok | denied | error | timeout
    ts: float
    error: str = ""
    policy_version: int = 0
    #: How the call reached the gateway: ``sdk`` (an SDK agent's ``ctx.llm``) or the HTTP
    #: API an agent's own client spoke (``openai.chat``, ``openai.responses``, ``anthropic.messages``).
    endpoint: str = "sdk"

    def to_wire(self) -> dict[str, Any]:
        return asdict(self)
