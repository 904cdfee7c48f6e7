"""The supervisor: owns the agents, answers the control API, publishes events.

It is the single writer of fleet state. Operator actions arrive as control
ops (from the console or the CLI, tagged with their origin) and are audited;
agent requests arrive over each agent's channel; policy edits arrive as new
immutable ``PolicyBook`` snapshots. Every state change becomes an ``Event``
that is persisted and pushed to subscribers.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from array import array
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fleet import __version__
from fleet.errors import FleetError, ProtocolError, UnknownAgent
from fleet.names import unknown_agent_message
from fleet.records import AgentState, Event, LogChunk
from fleet.supervisor.cgroups import Cgroups
from fleet.supervisor.instance import AgentInstance, agent_sessions
from fleet.supervisor.limits import LimitWatch, has_limits
from fleet.supervisor.loghub import LogHub
from fleet.supervisor.procstat import ProcSampler
from fleet.supervisor.proctree import TreeTracker
from fleet.supervisor.seams import GatewaySeam, Hooks, SdkCall, Services, StoreSeam, fire
from fleet.supervisor.stdinwatch import StdinWatch
from fleet.wire import AgentRow, Status

if TYPE_CHECKING:
    from fleet.policy import PolicyBook

S = AgentState

#: Time ``status`` may spend sampling CPU and memory before it answers with older figures.
STATUS_SAMPLE_BUDGET_S = 0.01
#: ``status`` answers with CPU and memory figures up to this old (and has them refreshed
#: after it answered); older ones it samples first, within ``STATUS_SAMPLE_BUDGET_S``.
STATUS_STATS_MAX_AGE_S = 10.0
#: Event kinds that are persisted (logs go to the store through the LogHub).
PERSISTED = {"state", "restart", "alert", "policy_applied", "policy_error", "approval", "audit", "task", "budget",
             "question", "store", "limit"}


@dataclass(eq=False)
class Subscriber:
    """A client that asked for pushed events; ``send`` must not block."""

    send: Callable[[dict[str, Any]], bool]
    kinds: set[str] | None = None
    agents: set[str] | None = None
    dropped: int = 0
    #: Asked before a log chunk is encoded for this subscriber: False skips it (the
    #: subscriber counts and reports what it skipped). A flood is encoded only for
    #: the lines a subscriber will actually get, not for every line read.
    admit_logs: Callable[[LogChunk], bool] | None = None

    def wants(self, kind: str, agent: str | None) -> bool:
        if self.kinds is not None and kind not in self.kinds:
            return False
        return self.agents is None or agent is None or agent in self.agents


@dataclass(frozen=True, slots=True)
class AgentSnapshot:
    """What ``status`` shows of an instance, published by the loop at each change of it.

    The control socket's thread answers ``status`` from these (and from the
    other figures published for it: the gateway's totals, the log hub's last
    lines, the alert and approval counts) and never reads or writes an
    ``AgentInstance``, which belongs to the loop.
    """

    name: str
    group: str
    kind: str
    state: str
    reason: str | None
    pid: int | None
    restarts: int
    exit_code: int | None
    #: ``time.monotonic()`` at the start of the live run; None when not alive.
    started_mono: float | None
    policy: str
    goal: str
    #: The restart policy's ``stop_grace_s`` (``fleet down`` waits that long before SIGKILL).
    stop_grace_s: float
    #: Wall time it began waiting for its operator (state ``waiting``), else None.
    waiting_since: float | None
    #: Runs on a terminal the supervisor holds (``fleet attach``).
    tty: bool
    #: Its input: "open" (``fleet send`` writes to it), "closed" (EOF sent), None (an SDK agent).
    input: str | None
    #: Who or what put it in its state: operator, budget, alert, crash-loop, exit, restart (or None).
    reason_kind: str | None = None
    #: Wall time its state began.
    since: float = 0.0
    #: Its daily budget (``budget.usd_per_day``); None without one.
    budget_usd: float | None = None

    @property
    def uptime_s(self) -> float:
        return 0.0 if self.started_mono is None else time.monotonic() - self.started_mono


#: ``ctx.metric`` series kept per agent, and points per series. An agent calling
#: ``ctx.metric`` with ever-new names grew the supervisor ~110 MB/s: past the cap a new
#: name is ignored (said once in the agent's ``fleet`` log). Points are two doubles in a
#: fixed array, so one agent's metrics hold at most 64 x 600 x 16 B = 600 KiB.
MAX_METRIC_SERIES = 64
METRIC_POINTS = 600


class _Series:
    """The last ``METRIC_POINTS`` (ts, value) points of one metric, in a fixed array."""

    __slots__ = ("_data", "_n", "_next")

    def __init__(self) -> None:
        self._data = array("d", bytes(16 * METRIC_POINTS))
        self._n = 0
        self._next = 0

    def append(self, point: tuple[float, float]) -> None:
        i = 2 * self._next
        self._data[i], self._data[i + 1] = point
        self._next = (self._next + 1) % METRIC_POINTS
        self._n = min(self._n + 1, METRIC_POINTS)

    def points(self) -> list[tuple[float, float]]:
        start = (self._next - self._n) % METRIC_POINTS
        d = self._data
        return [(d[2 * j], d[2 * j + 1]) for j in ((start + k) % METRIC_POINTS for k in range(self._n))]

    def __len__(self) -> int:
        return self._n


@dataclass
class _Metrics:
    series: dict[str, _Series] = field(default_factory=dict)
    #: Names refused because the agent already had ``MAX_METRIC_SERIES`` series.
    refused: int = 0


class Supervisor:
    """Everything a running fleet is, behind one object."""

    def __init__(
        self,
        fleet_dir: Path,
        book: PolicyBook,
        *,
        store: StoreSeam | None = None,
        gateway: GatewaySeam | None = None,
        state_dir: Path | None = None,
    ) -> None:
        self.fleet_dir = fleet_dir
        self.book = book
        self.fleet_name = book.fleet.name
        self.state_dir = state_dir or fleet_dir / book.fleet.state_dir
        self.store: StoreSeam | None = store
        self.gateway: GatewaySeam | None = gateway
        self.token = secrets.token_hex(8)
        self.loghub = LogHub(store)
        self.instances: dict[str, AgentInstance] = {}
        self.policy_version = 0
        self.started = time.time()
        #: How this fleet was started (``run``, ``up``, ``console``; ``api`` in-process): see ``daemon_info``.
        self.started_by = "api"
        #: True once ``start`` has created (and spawned) every agent: ``fleet up`` returns then.
        self.ready = False
        self._subscribers: list[Subscriber] = []
        self._run_ids = 0
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._stopping = False
        self._shutdown = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._metrics: dict[str, _Metrics] = defaultdict(_Metrics)
        self._procs = ProcSampler()
        self._stats_at = 0.0
        self._sample_lock = threading.Lock()
        self._stats_wanted = asyncio.Event()
        #: What the last stats push said of each agent (uptime aside): pushes carry changes only.
        self._stats_sent: dict[str, dict[str, Any]] = {}
        self._stats_gateway_sent: tuple[str, int] | None = None
        #: Each agent in a session of its own (a terminal is reachable from ours) or a group only.
        self.agent_sessions = agent_sessions()
        self._stats: dict[str, tuple[float, int]] = {}
        self._nprocs: dict[str, int] = {}
        #: Each agent's processes: its own cgroup where the system allows (``Cgroups.detect``
        #: at start), else the process tree with this process as subreaper (``tree``).
        self.cgroups: Cgroups | None = None
        self.tree: TreeTracker | None = None
        self._tree_sent: set[tuple[int, int]] = set()
        self.limit_watch = LimitWatch(self)
        self._watch_wanted = asyncio.Event()
        self._sampled_at: dict[str, float] = {}
        #: Services other subsystems attach (approvals, the task queue, the alert engine, questions).
        self.services = Services()
        #: SDK calls by name (``llm``, ``next_task`` ...): ``async (inst, args, push) -> result``.
        self.sdk_calls: dict[str, SdkCall] = {}
        #: Listeners of what happens, by kind (see ``fleet.supervisor.seams.Hooks``).
        self.hooks = Hooks()
        #: What ``status`` shows of each instance, in table order: a new dict at each change.
        self._rows: dict[str, AgentSnapshot] = {}
        #: Which agents are blocked reading their input (``waiting``).
        self.stdin_watch = StdinWatch(self)
        #: ``redact(value)``: the gateway's keys out of any JSON value an agent sends or an
        #: event carries (``Redactor.value``; the identity until the gateway is attached).
        self.redact: Callable[[Any], Any] = _identity
        self.loghub.subscribe(self._push_logs)
        if store is not None:
            store.on_pressure(self.loghub.set_pressure)
        if store is not None and hasattr(store, "on_health"):
            store.on_health(self._on_store_health)

    # --- lifecycle -------------------------------------------------------------
    async def start(self, *, spawn: bool = True) -> None:
        """Spawn the watchdog and (unless ``spawn`` is False) every agent of the book."""
        # The agents are listed (stopped) from the start: the control socket already
        # answers, and an empty fleet would read as "all agents running".
        for spec in self.book.agents:
            for name in spec.instances():
                if name not in self.instances:
                    self.instances[name] = AgentInstance(self, spec, name, self.book.policy_for(name))
        self._publish_rows()
        if self.store is not None:
            self.loghub.seed(await self.store.max_seqs())
            self._run_ids = max(self._run_ids, int(time.time() * 1000) % 10**12)
            self.policy_version = await self.store.latest_policy_version()
        self._start_isolation()
        self._start_watchdog()
        if self.cgroups is not None:
            for base in dict.fromkeys(self.cgroups.bases.values()):
                self._watchdog_send(f"+c{base}")
        await self._record_policy_version(None)
        if spawn:
            self.spawn_all()
            self._sample()  # starts the CPU clocks: the first status has figures to show
        self._spawn(self._stats_loop())
        self._spawn(self.stdin_watch.run())
        self._spawn(self._watch_loop())
        self.ready = True

    # --- isolation: cgroups, or the process tree ------------------------------------------
    def _start_isolation(self) -> None:
        self.cgroups = Cgroups.detect(self.token)
        if self.cgroups is None and sys.platform.startswith("linux"):
            from fleet.supervisor.hardening import become_subreaper

            with contextlib.suppress(OSError):
                become_subreaper()
            self.tree = TreeTracker()

    @property
    def isolation(self) -> str:
        """How agents' processes are held: which cgroups, or the process tree."""
        if self.cgroups is not None:
            return self.cgroups.describe()
        return "process tree (subreaper)" if self.tree is not None else "process groups"

    def update_tree(self) -> None:
        """Rescan the agents' process trees (no cgroups) and tell the watchdog about new processes."""
        tree = self.tree
        if tree is None:
            return
        roots = {inst.pid: inst.name for inst in self.instances.values() if inst.pid is not None}
        tree.update(roots)
        current = {(pid, start) for pid, (_, start) in tree.owner.items()}
        for pid, start in current - self._tree_sent:
            self._watchdog_send(f"+p{pid}:{start}")
        self._tree_sent = current

    def _watch_needed(self) -> bool:
        alive = [i for i in self.instances.values() if i.state.alive]
        return bool(alive) and (self.tree is not None or any(has_limits(i.policy) for i in alive))

    async def _watch_loop(self, interval: float = 1.0) -> None:
        """Once a second while agents run with limits (or without cgroups): trees, limits, actions.

        A fleet with cgroups and no limits never wakes up for this.
        """
        while True:
            if not self._watch_needed():
                self._watch_wanted.clear()
                await self._watch_wanted.wait()  # set when an agent starts or a policy changes
            await asyncio.sleep(interval)  # a periodic check, not synchronisation
            try:
                self.update_tree()
                for inst in list(self.instances.values()):
                    if has_limits(inst.policy) and inst.state.alive:
                        self.limit_watch.check(inst)
            except Exception as exc:
                print(f"fleet: limit check failed: {exc!r}", file=sys.stderr)

    async def _stats_loop(self, interval: float = 1.0) -> None:
        """Push CPU, memory and spend once a second, but only while someone watches.

        An unwatched fleet does no sampling at all, so 200 idle agents cost the
        supervisor next to nothing. A push names only the agents whose figures
        changed (``uptime_s`` alone does not count: watchers run that clock
        themselves from the last value they got), so a quiet fleet of 200 sends
        nothing at all instead of 200 rows a second; a new watcher gets every
        agent in the next push.
        """
        while True:
            if not any(s.wants("stats", None) for s in self._subscribers):
                self._stats_wanted.clear()
                await self._stats_wanted.wait()  # set by subscribe(): no wake-ups while nobody looks
            await asyncio.sleep(interval)
            if any(s.wants("stats", None) for s in self._subscribers):
                self._stats_at = 0.0
                self._sample()
                self.publish_stats_changes()

    def publish_stats_changes(self) -> list[dict[str, Any]]:
        """Push the agents whose status changed since the last push (all of them after a new watcher)."""
        changed: list[dict[str, Any]] = []
        for row in self._rows.values():
            status: dict[str, Any] = dict(self.agent_status(row))
            uptime = status.pop("uptime_s")
            if self._stats_sent.get(row.name) != status:
                self._stats_sent[row.name] = status
                changed.append({**status, "uptime_s": uptime})
        # The gateway goes idle -> loading -> ready when the first SDK agent calls it; the policy
        # version too: a console may have asked for status before the first one was recorded.
        gateway = (self.gateway_state, self.policy_version)
        if changed or gateway != self._stats_gateway_sent:
            self._stats_gateway_sent = gateway
            self.publish("stats", None, {"agents": changed, "gateway": gateway[0], "policy_version": gateway[1]})
        return changed

    @property
    def gateway_state(self) -> str:
        return getattr(self.gateway, "state", "off")

    @property
    def gateway_url(self) -> str | None:
        """Base URL of the gateway's OpenAI/Anthropic-compatible endpoints (None when not serving)."""
        http = self.services.http_gateway
        return http.url if http is not None and http.port else None

    def spawn_all(self) -> None:
        for inst in self.instances.values():
            inst.start()

    async def wait_closed(self) -> None:
        await self._shutdown.wait()

    def request_shutdown(self) -> None:
        self._shutdown.set()

    async def shutdown(self) -> None:
        """Stop every agent (SIGTERM, grace, SIGKILL), flush the store, release the watchdog."""
        if self._stopping:
            return
        self._stopping = True
        self.publish("fleet", None, {"message": "fleet stopping"})
        await asyncio.gather(*(i.stop("fleet shutdown") for i in self.instances.values()), return_exceptions=True)
        if self.loghub.paused:
            # Pipes paused by a store that cannot write (disk full): read what the agents left
            # in them, so the store counts it as unwritten instead of it vanishing unseen.
            self.loghub.drain()
            drained = [asyncio.ensure_future(i.output_drained()) for i in self.instances.values()]
            if drained:
                await asyncio.wait(drained, timeout=2.0)
        for t in list(self._tasks):
            t.cancel()
        self._release_isolation()
        self._stop_watchdog(clean=True)
        self._shutdown.set()

    def kill_all_now(self) -> None:
        """Synchronous last resort (an exception on the way out): SIGKILL every group."""
        for inst in self.instances.values():
            inst.kill_now()
        self._release_isolation()

    def _release_isolation(self) -> None:
        """Kill what is left of the agents (cgroups or trees) and remove the fleet's cgroups."""
        if self.cgroups is not None:
            self.cgroups.remove()
        if self.tree is not None:
            self.update_tree()
            for inst in self.instances.values():
                self.tree.signal(inst.name, signal.SIGKILL)
            from fleet.supervisor.hardening import stop_subreaping

            with contextlib.suppress(OSError):
                stop_subreaping()

    def daemon_info(self) -> dict[str, Any]:
        """What ``fleet status`` and ``fleet down`` need to know of the process running the fleet."""
        wd = self._watchdog  # Popen.poll below takes the Popen's own lock: safe from any thread
        grace = [row.stop_grace_s for row in self._rows.values()]
        return {
            "pid": os.getpid(),
            "started_at": self.started,
            "uptime_s": round(time.time() - self.started, 3),
            "started_by": self.started_by,
            "ready": self.ready,
            "fleet_dir": str(self.fleet_dir),
            "state_dir": str(self.state_dir),
            "log": str(self.state_dir / "fleet.log") if self.started_by in ("up", "console") else None,
            "watchdog_pid": wd.pid if wd is not None and wd.poll() is None else None,
            "stop_grace_s": max(grace, default=0.0),
        }

    # --- watchdog ------------------------------------------------------------------
    def _start_watchdog(self) -> None:
        self._watchdog = subprocess.Popen(
            watchdog_argv(self.token),
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
            env=watchdog_env(os.environ),
        )

    def _watchdog_send(self, line: str) -> None:
        wd = self._watchdog
        if wd is None or wd.stdin is None:
            return
        try:
            wd.stdin.write(line.encode() + b"\n")
            wd.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass

    def watchdog_add(self, pgid: int) -> None:
        self._watchdog_send(f"+{pgid}")

    def watchdog_remove(self, pgid: int) -> None:
        self._watchdog_send(f"-{pgid}")

    def _stop_watchdog(self, clean: bool) -> None:
        wd = self._watchdog
        if wd is None:
            return
        if clean:
            self._watchdog_send("exit")
        with contextlib.suppress(Exception):
            assert wd.stdin is not None
            wd.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            wd.wait(timeout=2)
        self._watchdog = None

    # --- store health ------------------------------------------------------------------
    def _on_store_health(self, error: str) -> None:
        """The store's writes started failing (``error``) or resumed (``""``): an event, pushed and kept."""
        health = self.store.health() if self.store is not None else {}
        if error:
            data = {"ok": False, "error": error, "since": health.get("since"),
                    "message": f"store writes failing: {error}; log pipes paused, retrying"}
        else:
            data = {"ok": True, "error": None, "message": "store writes resumed"}
        self.publish("store", None, data)

    def store_health(self) -> dict[str, Any] | None:
        """The store's write health for ``status`` (None without a store)."""
        health = getattr(self.store, "health", None)
        return health() if health is not None else None

    # --- events ----------------------------------------------------------------------
    def subscribe(self, sub: Subscriber) -> Callable[[], None]:
        self._subscribers.append(sub)
        if sub.wants("stats", None):
            self._stats_sent.clear()  # the next push tells the newcomer about every agent
            self._stats_gateway_sent = None
            self._stats_wanted.set()
        return lambda: self._subscribers.remove(sub) if sub in self._subscribers else None

    def publish(self, kind: str, agent: str | None, data: dict[str, Any]) -> Event:
        if kind not in _NOT_REDACTED:  # texts an agent chose may be in any event: no key is stored or shown
            data = self.redact(data)
        ev = Event(kind, agent, data, time.time())
        if kind in PERSISTED and self.store is not None:
            self._spawn(self.store.add_event(ev))
        wire = {"event": kind, "data": {**data, "agent": agent, "ts": ev.ts}}
        for sub in list(self._subscribers):
            if sub.wants(kind, agent) and not sub.send(wire):
                sub.dropped += 1
        return ev

    def _push_logs(self, chunk: LogChunk) -> None:
        if not self._subscribers:
            return
        wire = None
        for sub in self._subscribers:
            if sub.wants("logs", chunk.agent):
                if sub.admit_logs is not None and not sub.admit_logs(chunk):
                    continue
                if wire is None:
                    wire = {"event": "logs", "data": chunk.to_wire()}
                if not sub.send(wire):
                    sub.dropped += 1

    @property
    def stopping(self) -> bool:
        """True once the whole fleet is shutting down."""
        return self._stopping

    def spawn(self, coro: Any) -> None:
        """Run ``coro`` in the background for the fleet's lifetime; failures are reported."""
        self._spawn(coro)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            print(f"fleet: background task failed: {exc!r}", file=sys.stderr)

    # --- callbacks from instances ------------------------------------------------
    def next_run_id(self) -> int:
        self._run_ids += 1
        return self._run_ids

    def on_state(self, inst: AgentInstance, prev: AgentState) -> None:
        if inst.state.alive and not prev.alive:
            # A new run: the figures of the last one (its processes, memory) are not this one's.
            self._stats.pop(inst.name, None)
            self._nprocs.pop(inst.name, None)
            self._watch_wanted.set()
        self._publish_row(inst)
        self.publish(
            "state",
            inst.name,
            {"state": inst.state.value, "prev": prev.value, "reason": inst.reason, "pid": inst.pid,
             "restarts": inst.restarts, "exit_code": inst.exit_code, "reason_kind": inst.reason_kind,
             "since": inst.since},
        )
        fire(self.hooks.on_state, inst, prev)

    def on_exit(self, inst: AgentInstance, returncode: int) -> None:
        """An instance's process ended (before its state says what happens next)."""
        fire(self.hooks.on_exit, inst, returncode)

    def on_crash_loop(self, inst: AgentInstance, msg: str) -> None:
        self.publish("alert", inst.name, {"rule": "crash_loop", "severity": "error", "message": msg})

    def note(self, agent: str, text: str) -> None:
        """A line from the supervisor about an agent, in that agent's ``fleet`` stream."""
        inst = self.instances.get(agent)
        run_id = inst.run.run_id if inst and inst.run else 0
        self.loghub.add(agent, run_id, "fleet", 1, text.replace("\n", " ") + "\n", time.time())

    def agent_log(self, inst: AgentInstance, msg: dict[str, Any]) -> None:
        level = str(msg.get("level", "info")).upper()[:8]
        text = str(msg.get("msg", ""))
        fields = msg.get("fields") or {}
        if isinstance(fields, dict) and fields:
            text += " " + " ".join(f"{k}={v}" for k, v in fields.items())
        run_id = inst.run.run_id if inst.run else 0
        line = f"{level} {text}".replace("\r", " ").replace("\n", " ")[:65536]
        self.loghub.add(inst.name, run_id, "sdk", 1, line + "\n", time.time())
        fire(self.hooks.on_log, inst, level, text)

    def agent_metric(self, inst: AgentInstance, msg: dict[str, Any]) -> None:
        name = str(msg.get("name", ""))[:100]
        try:
            value = float(msg.get("value", 0.0))
        except (TypeError, ValueError):
            raise ProtocolError(f"metric {name!r} has a non-numeric value") from None
        metrics = self._metrics[inst.name]
        series = metrics.series.get(name)
        if series is None:
            if len(metrics.series) >= MAX_METRIC_SERIES:
                metrics.refused += 1
                if metrics.refused == 1:
                    self.note(inst.name, f"metric {name!r} not kept: at most {MAX_METRIC_SERIES} metric series "
                                         "per agent (further new names are ignored)")
                return
            series = metrics.series[name] = _Series()
        series.append((time.time(), value))
        fire(self.hooks.on_metric, inst, name, value)

    def agent_alert(self, inst: AgentInstance, msg: dict[str, Any]) -> None:
        severity = str(msg.get("severity", "warning"))
        if severity not in ("info", "warning", "error", "critical"):
            severity = "warning"
        data = {"rule": str(msg.get("rule", "agent"))[:64], "severity": severity,
                "message": str(msg.get("message", ""))[:2000], "fields": msg.get("fields") or {}}
        if not fire(self.hooks.on_agent_alert, inst, data):
            self.publish("alert", inst.name, data)

    def init_message(self, inst: AgentInstance) -> dict[str, Any]:
        return {
            "t": "init",
            "agent": inst.name,
            "group": inst.group,
            "fleet": self.fleet_name,
            "goal": self.goal_for(inst),
            "policy": inst.policy.model_dump(mode="json"),
            "policy_version": self.policy_version,
        }

    def goal_for(self, inst: AgentInstance) -> str:
        return inst.spec.goal or inst.policy.goal or ""

    async def agent_call(
        self, inst: AgentInstance, op: str, args: dict[str, Any], push: Callable[[dict[str, Any]], None]
    ) -> Any:
        """An SDK call from an agent (llm, tool, approve, next_task ...)."""
        handler = self.sdk_calls.get(op)
        if handler is None:
            raise ProtocolError(f"unknown SDK call {op!r}")
        # Whatever an agent sends may be stored (task payloads and results, approval
        # arguments) or shown: the gateway's keys are taken out at the door.
        return await handler(inst, self.redact(args), push)

    # --- selecting agents ---------------------------------------------------------
    def select(self, names: Iterable[str] | None, all_: bool = False) -> list[AgentInstance]:
        if all_:
            return list(self.instances.values())
        out: list[AgentInstance] = []
        for name in names or ():
            matched = [i for i in self.instances.values() if i.name == name or i.group == name]
            if not matched:
                raise UnknownAgent(unknown_agent_message(name, [*self.groups(), *self.instances]))
            out.extend(m for m in matched if m not in out)
        if not out:
            raise FleetError("name at least one agent, or use --all")
        return out

    def groups(self) -> list[str]:
        seen: dict[str, None] = {}
        for i in self.instances.values():
            seen.setdefault(i.group, None)
        return list(seen)

    # --- status ------------------------------------------------------------------------
    def _sample(self, budget_s: float | None = None) -> bool:
        """CPU and memory per agent, at most once a second.

        Also called from the control socket's thread (``status``), with a time
        budget: under a log flood every /proc read there waits its turn for the
        interpreter, and 20 agents took ~200 ms. Agents not reached keep their
        previous figures and are sampled first next time. The lock keeps two
        samplings from racing on the process cache.
        """
        with self._sample_lock:
            now = time.monotonic()
            if now - self._stats_at < 1.0:
                return True
            if self._sample_now(now + budget_s if budget_s is not None else None):
                self._stats_at = now
                return True
            return False

    def _sample_now(self, deadline: float | None) -> bool:
        """Sample the least recently sampled agents first; True when every agent was reached."""
        stats = self._stats
        alive = {row.pid: row.name for row in self._rows.values() if row.pid is not None}
        names = set(alive.values())
        for name in [n for n in stats if n not in names]:
            del stats[name]
        for name in [n for n in self._sampled_at if n not in names]:
            del self._sampled_at[name]
        for name in [n for n in self._nprocs if n not in names]:
            del self._nprocs[name]
        order = sorted(alive.items(), key=lambda item: self._sampled_at.get(item[1], 0.0))
        for i, (pid, name) in enumerate(order):
            if deadline is not None and i and time.monotonic() > deadline:
                return False
            inst = self.instances.get(name)
            tree = None
            if inst is not None and (inst.cgroup is not None or self.tree is not None):
                # The agent and all its children: cgroup totals, or the tree's sums.
                tree = self.limit_watch.figures(inst)
            if tree is not None:
                stats[name] = (tree.cpu_pct, tree.memory_bytes)
                self._nprocs[name] = tree.processes
            else:
                figures = self._procs.sample(pid)
                if figures is None:
                    stats.pop(name, None)
                else:
                    stats[name] = figures
                self._nprocs[name] = 1 if figures is not None else 0
            self._sampled_at[name] = time.monotonic()
        self._procs.keep(set(alive))
        return True

    def metrics(self, agent: str | None = None) -> dict[str, dict[str, list[tuple[float, float]]]]:
        """Recent ``ctx.metric`` series per agent (bounded rings), for the console's charts."""
        return {
            name: {k: v.points() for k, v in m.series.items()}
            for name, m in self._metrics.items()
            if agent is None or name == agent
        }

    def _snapshot(self, inst: AgentInstance) -> AgentSnapshot:
        run = inst.run
        alive = inst.state.alive and run is not None
        return AgentSnapshot(
            inst.name, inst.group, inst.kind, inst.state.value, inst.reason, inst.pid, inst.restarts,
            inst.exit_code, run.started_mono if alive and run is not None else None,
            inst.spec.policy or "default", self.goal_for(inst), float(inst.policy.restart.stop_grace_s),
            inst.waiting_at, bool(inst.spec.tty),
            "closed" if inst.input_closed else "open" if inst.accepts_input else None,
            inst.reason_kind, inst.since, inst.policy.budget.usd_per_day,
        )

    def row_changed(self, inst: AgentInstance) -> None:
        """Something ``status`` shows of ``inst`` changed without a change of state: publish it."""
        self._publish_row(inst)

    def _publish_row(self, inst: AgentInstance) -> None:
        """Publish ``inst`` as it is now (on the loop): a new dict, so readers never see one change."""
        if inst.name in self.instances:
            self._rows = {**self._rows, inst.name: self._snapshot(inst)}

    def _publish_rows(self) -> None:
        """Publish every instance anew, in table order (start, a new book, a removal)."""
        self._rows = {name: self._snapshot(inst) for name, inst in self.instances.items()}

    def agent_status(self, row: AgentSnapshot) -> AgentRow:
        """One row of ``status``, from published figures only (any thread may call it)."""
        name = row.name
        cpu, rss = self._stats.get(name, (0.0, 0))
        totals: dict[str, Any] = self.gateway.totals_snapshot(name) if self.gateway is not None else {}
        alerts = self.services.alerts
        return {
            "name": name,
            "group": row.group,
            "kind": row.kind,  # type: ignore[typeddict-item]
            "state": row.state,  # type: ignore[typeddict-item]
            "reason": row.reason,
            "reason_kind": row.reason_kind,
            "since": round(row.since, 3),
            "pid": row.pid,
            "restarts": row.restarts,
            "exit_code": row.exit_code,
            "uptime_s": round(row.uptime_s, 3),
            "cpu_pct": cpu,
            "rss_bytes": rss,
            "processes": self._nprocs.get(name, 0) if row.pid is not None else 0,
            "tokens": int(totals.get("tokens", 0)),
            "cost_usd": float(totals.get("cost_usd", 0.0)),
            "cost_today_usd": float(totals.get("cost_today_usd", 0.0)),
            "budget_used": totals.get("budget_used"),
            "budget_usd": row.budget_usd,
            "alerts": alerts.count(name) if alerts is not None else 0,
            "last_line": self.loghub.last_line(name),
            "policy": row.policy,
            "waiting_since": row.waiting_since,
            "tty": row.tty,
            "input": row.input,
            "goal": row.goal,
            "lines": self.loghub.last_seq(name),
        }

    def stats_age_s(self) -> float:
        """Seconds since CPU and memory were last sampled for every agent."""
        return time.monotonic() - self._stats_at

    def refresh_stats(self, budget_s: float | None = None) -> bool:
        """Sample CPU and memory if the figures are over a second old; True once all are fresh.

        With ``budget_s``, stops after that long (the agents sampled least
        recently go first): call again until it returns True.
        """
        return self._sample(budget_s)

    def status(self) -> Status:
        """The whole fleet at a glance; cheap enough to answer under a flood, from any thread.

        Answered on the control socket's thread from what the loop publishes
        (instance snapshots, the gateway's totals, counts), so it never reads a
        half-changed instance nor writes anything the loop owns. Sampling 20
        agents' /proc files took ~200 ms under a log flood (each read waits its
        turn for the interpreter), so recent figures are reused and the caller
        refreshes them after answering (see ``refresh_stats``).
        """
        if self.stats_age_s() > STATUS_STATS_MAX_AGE_S:
            self._sample(budget_s=STATUS_SAMPLE_BUDGET_S)
        approvals = self.services.approvals
        return {
            "fleet": self.fleet_name,
            "fleet_dir": str(self.fleet_dir),
            "pid": os.getpid(),
            "version": __version__,
            "policy_version": self.policy_version,
            "uptime_s": round(time.time() - self.started, 3),
            "gateway": self.gateway_state,  # type: ignore[typeddict-item]
            "gateway_url": self.gateway_url,
            "approvals_pending": approvals.pending_count if approvals is not None else 0,
            "log_pressure": self.loghub.paused,
            "daemon": self.daemon_info(),
            "store": self.store_health(),
            "isolation": self.isolation,
            "dumpable": _dumpable(),
            "agents": [self.agent_status(row) for row in self._rows.values()],
        }

    # --- policy --------------------------------------------------------------------------
    async def _record_policy_version(self, old: PolicyBook | None) -> None:
        if self.store is None:
            self.policy_version += 1
            return
        from fleet.policy import book_diff

        content = "".join(f"# --- {p}\n{t}\n" for p, t in sorted(self.book.files.items()))
        latest = self.policy_version
        if old is None and latest:
            # Same content as the last run's last version: keep its number.
            with contextlib.suppress(Exception):
                last = await self.store.policy_version_hash(latest)
                if last == self.book.content_hash:
                    return
        self.policy_version = await self.store.add_policy_version(
            self.book.content_hash, content, book_diff(old, self.book)
        )

    async def apply_book(self, new: PolicyBook) -> dict[str, Any]:
        """Swap in a validated book and carry its changes to the running fleet."""
        old = self.book
        self.book = new
        await self._record_policy_version(old)
        changes = new.changes_from(old)
        started: list[str] = []
        stopped: list[str] = []
        restarted: list[str] = []
        coros = []
        # Removed agents and removed replicas stop.
        wanted: dict[str, Any] = {}
        for spec in new.agents:
            for name in spec.instances():
                wanted[name] = spec
        for name, inst in list(self.instances.items()):
            if name not in wanted:
                stopped.append(name)
                coros.append(self._remove(inst))
        for name, spec in wanted.items():
            policy = new.policy_for(name)  # a replica may have overrides of its own
            inst = self.instances.get(name)
            if inst is None:
                inst = AgentInstance(self, spec, name, policy)
                self.instances[name] = inst
                inst.start()
                started.append(name)
                continue
            changed_process = spec.name in changes.added or spec.name in changes.respawn
            inst.spec = spec
            inst.policy = policy
            inst.apply_limits()
            if changed_process and inst.state.alive:
                restarted.append(name)
                coros.append(inst.restart())
            elif inst.kind == "sdk":
                inst.send({"t": "policy", "policy": policy.model_dump(mode="json"),
                           "goal": self.goal_for(inst), "version": self.policy_version})
        # Keep the table in fleet.toml order.
        self.instances = {n: self.instances[n] for n in wanted if n in self.instances} | {
            n: i for n, i in self.instances.items() if n not in wanted
        }
        await asyncio.gather(*coros, return_exceptions=True)
        self._watch_wanted.set()  # limits may have been set on running agents
        self._publish_rows()
        fire(self.hooks.on_policy, new)
        result = {"version": self.policy_version, "hash": new.content_hash, "files": list(changes.files),
                  "started": started, "stopped": stopped, "restarted": restarted}
        self.publish("policy_applied", None, result)
        return result

    async def _remove(self, inst: AgentInstance) -> None:
        await inst.stop("removed from fleet.toml")
        self.instances.pop(inst.name, None)
        self._metrics.pop(inst.name, None)
        self.limit_watch.forget(inst.name)
        if self.cgroups is not None:
            self.cgroups.forget(inst.name)
        if self.tree is not None:
            self.tree.forget(inst.name)
        self._publish_rows()
        self.publish("state", inst.name, {"state": "removed", "prev": inst.state.value, "reason": None})

    def policy_error(self, errors: list[Any]) -> None:
        self.publish("policy_error", None, {"errors": [_err_wire(e) for e in errors]})


#: All the watchdog's environment: what Python needs to find and import the fleet package.
_WATCHDOG_ENV = ("PATH", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "LANG", "LC_ALL", "TMPDIR")


def watchdog_argv(token: str) -> list[str]:
    """How the watchdog is started: as a file with ``-I -S`` (no site-packages, no package
    import). It imports os, signal, time and ctypes only: ~10 MB of RSS, a bare interpreter
    8.4, where ``-m fleet...`` was 13.7 and its former imports (pathlib, subprocess) 15."""
    return [sys.executable, "-I", "-S", str(Path(__file__).with_name("watchdog.py")), token]


def watchdog_env(environ: Any) -> dict[str, str]:
    """The watchdog's environment: named variables only, never a provider key (it is an
    ordinary dumpable process, so its environment is readable by every agent)."""
    return {k: environ[k] for k in _WATCHDOG_ENV if k in environ}


#: Events built by the supervisor from its own figures only (``stats``: numbers and the
#: already-redacted last log line); every other kind is redacted before it is stored or pushed.
_NOT_REDACTED = frozenset({"stats", "logs"})


def _dumpable() -> bool:
    """Whether this process's /proc files are readable by other processes of its user (they should not)."""
    from fleet.supervisor.hardening import is_dumpable

    return is_dumpable()


def _identity(value: Any) -> Any:
    return value


def _err_wire(e: Any) -> dict[str, Any]:
    return e if isinstance(e, dict) else e.to_wire()
