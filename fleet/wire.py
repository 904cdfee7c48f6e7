"""The records that cross the control socket, each defined once.

Every reply of the control API and every pushed event is JSON. These are the
shapes of that JSON, written down as ``TypedDict`` records: the supervisor
builds its answers with them, the CLI and the console read them, the console's
test fake builds its answers with them, and the operation registry
(:mod:`fleet.control.registry`) names them as the results of its operations.

Why ``TypedDict`` and not dataclasses or pydantic models: the wire *is* a dict,
so a record costs nothing to build or read (``status`` is answered for 200
agents under a log flood, and the console reads rows in its refresh path),
``fleet status --json`` keeps exactly the shape scripts rely on, and this module
needs nothing but ``typing_extensions`` (the CLI imports it without pydantic).
What a dataclass would check at construction, pydantic checks here where it
matters: :func:`check` validates a reply against its record (unknown keys are
errors), and the contract tests run it over the answers of a real fleet and of
the fake (tests/test_wire_contract.py).

Adding a field (say a column of the fleet table): add it to the record below,
fill it where the supervisor builds the record, and show it; the contract test
fails until the fake client gives it too.
"""

# No ``from __future__ import annotations``: TypedDict reads NotRequired from real annotations
# (``__optional_keys__``), which the contract tests use.
from typing import Any, Literal, NotRequired

from typing_extensions import TypedDict

#: The states an agent row can show (``fleet status``; design.md's contract).
State = Literal[
    "starting", "running", "waiting", "pausing", "paused", "stopping", "stopped", "exited", "crashed", "backoff",
    "crash-loop", "lost",
]
GatewayState = Literal["off", "idle", "loading", "ready", "error"]


# --- fleet and agents ---------------------------------------------------------------------
class AgentRow(TypedDict):
    """One agent instance in ``status`` (and in ``stats`` pushes, which carry changed rows)."""

    name: str
    group: str
    kind: Literal["sdk", "command"]
    state: State
    reason: str | None
    #: Who or what put it in its state: operator, budget, alert, crash-loop, exit, restart; None.
    reason_kind: str | None
    #: Wall time its state began (a paused agent: since when).
    since: float
    pid: int | None
    restarts: int
    exit_code: int | None
    uptime_s: float | None
    #: CPU and resident memory of the agent and all its children (its cgroup's totals or its tree's sums).
    cpu_pct: float
    rss_bytes: int
    #: Its processes now (the agent and every child, however detached).
    processes: int
    tokens: int
    cost_usd: float
    cost_today_usd: float
    #: Today's spend over ``budget.usd_per_day``; None without a daily budget.
    budget_used: float | None
    #: Its daily budget (``budget.usd_per_day``); None without one.
    budget_usd: float | None
    #: Open alerts of this agent.
    alerts: int
    last_line: str
    policy: str
    #: Wall time it began waiting for its operator (state ``waiting``), else None.
    waiting_since: float | None
    #: Runs on a terminal the supervisor holds (``fleet attach NAME``).
    tty: bool
    #: Its input: "open" (``fleet send`` writes to it), "closed" (end-of-file sent), None (an SDK agent).
    input: Literal["open", "closed"] | None
    goal: str
    #: Lines this agent has written (its last line number).
    lines: int


class Daemon(TypedDict):
    """The process that runs the fleet (``fleet status``, ``fleet down``)."""

    pid: int
    started_at: float
    uptime_s: float
    #: How it was started: ``run``, ``up``, ``console``, or ``api`` (in-process).
    started_by: str
    #: True once every agent of the book was created and spawned.
    ready: bool
    fleet_dir: str
    state_dir: str
    #: Its output file when it runs in the background (``up``, ``console``), else None.
    log: str | None
    watchdog_pid: int | None
    #: The longest ``stop_grace_s`` of the agents: how long a stop may take before SIGKILL.
    stop_grace_s: float


class Client(TypedDict):
    """A connection to the control socket other than a one-shot CLI call (a console, a script)."""

    #: The ``origin`` its requests give (``console``, ``api``...).
    kind: str
    pid: int | None
    #: The terminal it draws on, if any.
    tty: str | None
    since: float
    subscribed: bool


class StoreHealth(TypedDict):
    """``status``'s ``store``: whether the store's writes succeed (a full disk, an I/O error...)."""

    ok: bool
    #: What the disk said ("disk full (ENOSPC)"), while writes fail; else None.
    error: str | None
    #: Wall time the writes started failing (None while they succeed).
    since: float | None
    retries: NotRequired[int]
    backlog_bytes: NotRequired[int]
    #: Log lines given up at a shutdown while the disk was full.
    unwritten: NotRequired[int]
    dropped: NotRequired[int]
    readonly: NotRequired[bool]
    #: The highest log chunk id in the full-text index, and the log bytes not indexed yet.
    indexed_upto: NotRequired[int]
    index_lag_bytes: NotRequired[int]
    #: The log writer's longest wait for the database's write lock (the indexer's transactions), s.
    lock_wait_max_s: NotRequired[float]


class Status(TypedDict):
    """``status`` / ``fleet status --json``: the fleet at a glance."""

    fleet: str
    fleet_dir: str
    pid: int
    version: str
    policy_version: int
    uptime_s: float
    gateway: GatewayState
    #: Base URL of the OpenAI/Anthropic-compatible endpoints agents call (None when not serving).
    gateway_url: str | None
    approvals_pending: int
    #: True while the store's writer is behind and pipes are not read.
    log_pressure: bool
    #: How agents' processes are held: "cgroup v1 (...): dirs", "cgroup v2 ...", or "process tree (subreaper)".
    isolation: str
    #: Whether the supervisor's /proc files are readable by its own user (False: keys stay in it).
    dumpable: bool
    daemon: Daemon
    #: The store's write health (None for a fleet without a store).
    store: NotRequired[StoreHealth | None]
    agents: list[AgentRow]
    #: Added by the control socket (not by an in-process client): who is connected.
    clients: NotRequired[list[Client]]


class Ping(TypedDict):
    pid: int
    fleet: str
    version: str


class AgentsTouched(TypedDict):
    """Reply of pause/resume/restart/stop/start: the agents acted on."""

    agents: list[str]
    #: pause/resume only: the agents whose state this changed.
    changed: NotRequired[list[str]]


class Stopping(TypedDict):
    stopping: bool


class Subscribed(TypedDict):
    subscribed: list[str] | Literal["all"]
    #: Bytes of log text a second this subscriber is pushed at most.
    logs_max_rate: NotRequired[float]


# --- logs and events ------------------------------------------------------------------------
class LogLine(TypedDict):
    agent: str
    seq: int
    ts: float
    stream: str
    text: str
    run_id: int


class LogLines(TypedDict):
    lines: list[LogLine]


class Event(TypedDict):
    """A stored event (``events``); pushed ones come as ``{"event": kind, "data": {...}}``."""

    kind: str
    agent: str | None
    data: dict[str, Any]
    ts: float
    id: int | None


class Events(TypedDict):
    events: list[Event]


class Metrics(TypedDict):
    #: agent -> metric name -> [[ts, value], ...]
    metrics: dict[str, dict[str, list[tuple[float, float]]]]


# --- governance -------------------------------------------------------------------------------
class Approval(TypedDict):
    id: int
    agent: str
    action: str
    details: dict[str, Any]
    status: Literal["pending", "approved", "denied", "timeout"] | str
    created: float | None
    timeout_s: float
    policy_version: int
    # Pending ones held in memory also carry these...
    requested_at: NotRequired[float]
    expires_at: NotRequired[float]
    state: NotRequired[str]
    # ...decided ones read from the store these.
    decided_at: NotRequired[float | None]
    decided_by: NotRequired[str | None]
    reason: NotRequired[str | None]


class Approvals(TypedDict):
    approvals: list[Approval]


class Usage(TypedDict):
    """One LLM call as the gateway saw it (``fleet.records.UsageRecord`` on the wire)."""

    agent: str
    model: str
    tokens_in: int
    tokens_out: int
    cost_usd: float
    latency_s: float
    outcome: Literal["ok", "denied", "error", "timeout"]
    ts: float
    error: str
    policy_version: int
    #: The API the call came through: sdk, openai.chat, openai.responses, anthropic.messages.
    endpoint: str


class UsageCalls(TypedDict):
    calls: list[Usage]


class PolicyError(TypedDict):
    """``path:line:col: message`` of one error in a policy file (``text`` is that line)."""

    path: str
    line: int
    col: int
    message: str
    text: NotRequired[str]


class PolicyErrors(TypedDict):
    errors: list[PolicyError]


class PolicyWritten(TypedDict):
    errors: list[PolicyError]
    written: bool
    agents: NotRequired[list[str]]


class PolicyFile(TypedDict):
    path: str
    text: str


class PolicyFiles(TypedDict):
    files: list[PolicyFile]


class PolicyShown(TypedDict):
    """The effective policy of an agent (or a named policy) and the file each value came from."""

    agent: str
    policy: dict[str, Any]
    origins: dict[str, str]
    version: int
    #: Allowed models the fleet has no provider key for, with why (``"no OPENAI_API_KEY set ..."``).
    unavailable: NotRequired[dict[str, str]]


class OverrideSet(TypedDict):
    target: str
    key: str
    value: Any


# --- agents waiting for their operator -------------------------------------------------------------
class Sent(TypedDict):
    """Reply of ``send``: what was written to which agent, and whether it was waiting for it."""

    agents: list[str]
    bytes: int
    eof: bool
    waiting: bool
    state: State


class Question(TypedDict):
    """A question an SDK agent asked its operator (``ctx.ask``)."""

    id: int
    agent: str
    question: str
    #: The answers it accepts (empty: any text).
    choices: list[str]
    asked_at: float
    created: float
    timeout_s: float
    expires_at: float
    status: Literal["pending", "answered", "expired", "cancelled"]
    # Closed ones also carry these.
    answer: NotRequired[str | None]
    answered_by: NotRequired[str]
    answered_at: NotRequired[float]


class Questions(TypedDict):
    questions: list[Question]


class Answered(Question):
    agents: list[str]


# --- tasks, alerts, report ------------------------------------------------------------------
class Task(TypedDict):
    id: int
    kind: str
    payload: Any
    priority: int
    state: Literal["queued", "leased", "done", "failed", "dead"]
    attempt: int
    agent: str | None
    run_id: int | None
    created: float
    leased_at: float | None
    lease_expires: float | None
    finished_at: float | None
    error: str | None
    result: Any
    added_by: str | None
    #: Read from the store: when the row last changed.
    updated: NotRequired[float]


class TaskStats(TypedDict):
    queued: int
    leased: int
    waiting_agents: int
    strategy: str
    done: NotRequired[int]
    failed: NotRequired[int]
    dead: NotRequired[int]


class Tasks(TypedDict):
    tasks: list[Task]
    stats: TaskStats


class TaskAdded(TypedDict):
    id: int
    kind: str
    priority: int


class Alert(TypedDict):
    agent: str | None
    rule: str
    severity: Literal["info", "warning", "error", "critical"]
    message: str
    opened: float
    last: float
    count: int
    fields: dict[str, Any]
    action: str
    state: Literal["open", "closed", "cleared"]
    # History entries (not open_only) also carry these.
    ts: NotRequired[float]
    event: NotRequired[str]
    cleared: NotRequired[float]
    why: NotRequired[str]


class Alerts(TypedDict):
    alerts: list[Alert]
    open: int


class Report(TypedDict):
    format: Literal["json", "md"]
    report: NotRequired[dict[str, Any]]
    text: NotRequired[str]


# --- pushed events (after ``subscribe``): {"event": kind, "data": record} ---------------------------
class _Pushed(TypedDict):
    #: The agent the event is about (None: the fleet), added to every push.
    agent: str | None
    #: When it happened (wall clock), added to every push.
    ts: float


class StateChanged(_Pushed):
    state: State | Literal["removed"]
    prev: str
    reason: str | None
    pid: NotRequired[int | None]
    restarts: NotRequired[int]
    exit_code: NotRequired[int | None]
    reason_kind: NotRequired[str | None]
    since: NotRequired[float]


class StatsPushed(_Pushed):
    """Once a second while someone watches: the rows that changed (uptime aside)."""

    agents: list[AgentRow]
    gateway: GatewayState
    #: The policy version in force (a console that asked before the first was recorded learns it here).
    policy_version: NotRequired[int]


class LogsPushed(TypedDict):
    """Complete lines read in one go from one stream of one agent (``fleet.records.LogChunk``)."""

    agent: str
    run_id: int
    stream: str
    first_seq: int
    count: int
    ts: float
    text: str


class AlertPushed(_Pushed):
    rule: str
    severity: Literal["info", "warning", "error", "critical"]
    message: str
    # From the alert engine (a crash loop published by the supervisor has only the above).
    fields: NotRequired[dict[str, Any]]
    opened: NotRequired[float]
    last: NotRequired[float]
    count: NotRequired[int]
    action: NotRequired[str]
    state: NotRequired[Literal["open", "cleared"]]
    cleared: NotRequired[float]
    why: NotRequired[str]


class ApprovalPushed(Approval):
    """An approval asked for or decided (``Approval`` plus the push's ``ts``)."""

    ts: float


class TaskPushed(_Pushed):
    id: int
    kind: str
    state: Literal["queued", "leased", "done", "failed", "dead"]
    attempt: int
    reason: str | None
    priority: int
    outcome: NotRequired[str]
    error: NotRequired[str | None]
    result: NotRequired[Any]


class PolicyApplied(_Pushed):
    version: int
    hash: str
    files: list[str]
    started: list[str]
    stopped: list[str]
    restarted: list[str]


class PolicyRejected(_Pushed):
    errors: list[PolicyError]


class Audited(_Pushed):
    """An operator's action (or the policy's: a pause by an alert, a tool decision) and where it came from."""

    action: str
    target: str
    origin: str
    details: dict[str, Any]


class BudgetPushed(_Pushed):
    message: str
    action: str


class FleetNote(_Pushed):
    message: str


class QuestionPushed(Question):
    """A question asked, answered or expired (``Question`` plus the push's ``ts``)."""

    ts: float


class StorePushed(_Pushed):
    """The store's writes started failing (log pipes paused, retrying) or resumed; or a damaged
    store was moved aside at start (``recovered``)."""

    ok: bool
    error: str | None
    message: str
    since: NotRequired[float | None]
    recovered: NotRequired[bool]


class ConnectionClosed(TypedDict):
    """This connection is closed to make room for another (the socket is at its connection cap)."""

    reason: str


class LogsSkipped(TypedDict):
    """Lines not pushed to this subscriber (over its log rate); the store has them all."""

    lines: int
    agents: dict[str, int]


class Dropped(TypedDict):
    """Pushes dropped because this subscriber read too slowly."""

    count: int


#: The record of each pushed event's ``data``, by event kind.
PUSHES: dict[str, Any] = {
    "state": StateChanged,
    "stats": StatsPushed,
    "logs": LogsPushed,
    "alert": AlertPushed,
    "alert_cleared": AlertPushed,
    "approval": ApprovalPushed,
    "question": QuestionPushed,
    "usage": Usage,  # the call's record as ``usage`` gives it
    "task": TaskPushed,
    "policy_applied": PolicyApplied,
    "policy_error": PolicyRejected,
    "audit": Audited,
    "budget": BudgetPushed,
    "fleet": FleetNote,
    "store": StorePushed,
    "closed": ConnectionClosed,
    "logs_skipped": LogsSkipped,
    "dropped": Dropped,
}


def check(record: Any, value: Any) -> Any:
    """Validate ``value`` against ``record`` (a type from this module, or one built of them).

    Unknown keys are errors at every level. For tests and debugging: pydantic is
    imported here, not when this module is.
    """
    from pydantic import TypeAdapter

    return TypeAdapter(record).validate_python(value)


# pydantic reads this when it validates a record: a key the record does not name is an error.
for _record in list(globals().values()):
    if isinstance(_record, type) and hasattr(_record, "__required_keys__"):
        _record.__pydantic_config__ = {"extra": "forbid"}  # type: ignore[attr-defined]
del _record
