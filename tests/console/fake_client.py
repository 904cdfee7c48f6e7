"""An in-memory ``FleetClient`` over a small simulated fleet, for console tests.

It answers the ops the console uses with the records the supervisor promises
(``fleet.wire``), checks every call's arguments against the op's declaration
in the registry as the server does (tests/control/test_registry.py checks that
its ops take the declared arguments, tests/control/test_wire_contract.py that its
answers have the real fleet's fields),
and pushes the events a real fleet would: a ``state`` event after each
pause/resume/stop/start/restart (scheduled *after* the reply, as over a
socket), ``logs`` chunks, ``stats`` every second, ``approval`` and
``policy_applied``/``policy_error`` events. Time comes from an injected
clock so snapshots are stable; the log generator only runs when asked
(``live=True``), at a configurable rate, for the benchmark.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import tomllib
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

from fleet import wire
from fleet.control.registry import operations
from fleet.errors import AgentError, FleetError, ProtocolError, UnknownAgent

BASE_TS = 1_700_000_000.0

DEFAULT_AGENTS = (
    ("campaign-optimizer#1", "campaign-optimizer", "sdk", "growth"),
    ("campaign-optimizer#2", "campaign-optimizer", "sdk", "growth"),
    ("anomaly-watch", "anomaly-watch", "sdk", "ops"),
    ("ticker", "ticker", "command", "default"),
    ("nightly-script", "nightly-script", "command", "default"),
)

POLICY_FILES = {
    "fleet.toml": '[fleet]\nname = "demo"\n\n[[agent]]\nname = "anomaly-watch"\n'
    'run = "fleet.examples.watch:run"\npolicy = "ops"\n',
    "policies/default.toml": '[llm]\nmodel = "fleet/demo"\n\n[budget]\nusd_per_day = 1.0\n',
    "policies/ops.toml": '[llm]\nmodels = ["fleet/demo", "gpt-4o-mini"]\nmodel = "fleet/demo"\n\n'
    '[budget]\nusd_per_day = 2.0\ntokens_per_minute = 20000\non_exhausted = "pause"\n\n'
    '[tools]\ndeny = ["shell"]\napprove = ["send_email"]\n',
}
#: A policy edit that starts, stops and restarts no agent (``policy_applied``'s lists).
NOTHING_STARTED: dict[str, list[str]] = {"started": [], "stopped": [], "restarted": []}
KNOWN_TABLES = {"fleet", "agent", "llm", "budget", "tools", "restart", "alerts"}


class FakeFleetClient:
    """A simulated fleet answering ``call`` and feeding ``subscribe``.

    Args:
        agents: how many agents (generated names) or None for the five defaults.
        clock: wall clock for timestamps and ages (frozen by default).
        live: push ``stats`` every second and log chunks at ``lines_per_s``.
        lines_per_s: lines per second per agent when live.
        history: lines of history per agent already in the "store".
        call_delay: seconds each call takes (a slow supervisor).
        store_logs: keep generated lines for the ``logs`` op (off in the bench,
            where only the push path matters).
    """

    def __init__(
        self,
        agents: int | None = None,
        *,
        fleet: str = "demo",
        clock: Callable[[], float] | None = None,
        live: bool = False,
        lines_per_s: float = 20.0,
        history: int = 60,
        call_delay: float = 0.0,
        store_logs: bool = True,
    ) -> None:
        self.fleet = fleet
        self.clock = clock or (lambda: BASE_TS + 120.0)
        self.live = live
        self.lines_per_s = lines_per_s
        self.call_delay = call_delay
        self.store_logs = store_logs
        self.lines_pushed = 0
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.policy_version = 3
        self.gateway = "ready"
        self.policy_files = dict(POLICY_FILES)
        self.overrides: dict[tuple[str, str], Any] = {}
        #: Allowed models the fleet has no key for, with why (``policy_show``'s ``unavailable``).
        self.unavailable: dict[str, str] = {}
        self.shut_down = False
        self.closed = False
        self._queues: list[tuple[asyncio.Queue[dict[str, Any]], set[str] | None]] = []
        self._tasks: list[asyncio.Task[None]] = []
        specs = (
            DEFAULT_AGENTS
            if agents is None
            else [(f"agent-{i:02d}", f"agent-{i:02d}", "sdk", "default") for i in range(agents)]
        )
        self.agents: dict[str, wire.AgentRow] = {}
        self.logs: dict[str, deque[dict[str, Any]]] = {}
        self.seq: dict[str, int] = {}
        for index, (name, group, kind, policy) in enumerate(specs):
            state = "running"
            if agents is None and name == "nightly-script":
                state = "stopped"
            self.agents[name] = {
                "name": name,
                "group": group,
                "kind": kind,
                "state": state,
                "reason": None,
                "reason_kind": None,
                "since": BASE_TS + 120.0 - 600.0 * (index + 1),
                "pid": 4200 + index if state == "running" else None,
                "restarts": index % 3,
                "uptime_s": 60.0 * (index + 1) + 5 if state == "running" else None,
                "cpu_pct": 1.5 * index,
                "rss_bytes": 20_000_000 + index * 3_500_000,
                "processes": 1,
                "tokens": 1200 * index,
                "cost_usd": 0.0125 * index,
                "cost_today_usd": 0.4 * index if kind == "sdk" else 0.0,
                "budget_used": (0.2 * index) if kind == "sdk" else None,
                "budget_usd": 2.0 if kind == "sdk" else None,
                "alerts": 1 if name == "anomaly-watch" else 0,
                "last_line": "",
                "policy": policy,
                "goal": f"Keep {group} healthy and report anomalies",
                "exit_code": None,
                "lines": 0,
                "waiting_since": None,
                "tty": False,
                "input": "open" if kind == "command" else None,
            }
            self.logs[name] = deque(maxlen=20_000)
            self.seq[name] = 0
            for i in range(history):
                self._add_line(name, "sdk" if i % 3 == 0 else "stdout", self._sample(name, i), BASE_TS + i)
        self.approvals: dict[int, wire.Approval] = {
            1: {
                "id": 1,
                "agent": next(iter(self.agents)),
                "action": "send_email",
                "details": {"to": "cfo@example.com", "subject": "Weekly numbers"},
                "status": "pending",
                "created": self.clock() - 60.0,
                "timeout_s": 900,
                "policy_version": 3,
            }
        }
        #: Questions agents asked (``ctx.ask``); none open unless a test adds one.
        self.questions: dict[int, dict[str, Any]] = {}
        #: What ``send`` wrote, per agent: (text, eof).
        self.inputs: dict[str, list[tuple[str, bool]]] = {}
        self.events: list[dict[str, Any]] = [
            {
                "id": 1,
                "kind": "alert",
                "agent": "anomaly-watch",
                "data": {"rule": "error_rate", "message": "error rate 30% > 25%", "severity": "warning"},
                "ts": BASE_TS + 30.0,
            },
            {
                "id": 2,
                "kind": "policy_applied",
                "agent": None,
                "data": {"version": 3, "hash": "ab12", "files": ["policies/ops.toml"]},
                "ts": BASE_TS + 40.0,
            },
        ]

    # -- helpers ---------------------------------------------------------------

    @staticmethod
    def _sample(name: str, i: int) -> str:
        kind = i % 3
        if kind == 0:
            return f"INFO step done n={i} agent={name}"
        if kind == 1:
            return f"\x1b[32mok\x1b[0m processed batch {i} in {i % 7 + 1}ms"
        return f"fetching metrics page {i}"

    def _add_line(self, name: str, stream: str, text: str, ts: float) -> None:
        seq = self.seq[name]
        self.seq[name] = seq + 1
        self.logs[name].append({"agent": name, "seq": seq, "ts": ts, "stream": stream, "text": text, "run_id": 1})
        self.agents[name]["last_line"] = text
        self.agents[name]["lines"] = seq + 1

    def push(self, kind: str, data: dict[str, Any]) -> None:
        """Push ``data`` as a fleet would: with the ``agent`` and ``ts`` every event but a chunk carries."""
        if kind in wire.PUSHES and "ts" in wire.PUSHES[kind].__annotations__:
            data = {"agent": None, **data, "ts": data.get("ts", self.clock())}
        message = {"event": kind, "data": data}
        for queue, kinds in self._queues:
            if kinds is None or kind in kinds:
                queue.put_nowait(message)

    def push_lines(self, name: str, lines: list[str], stream: str = "stdout") -> None:
        """Append lines to ``name``'s log and push them as one chunk."""
        first = self.seq[name]
        ts = self.clock()
        if self.store_logs:
            for line in lines:
                self._add_line(name, stream, line, ts)
        else:
            self.seq[name] = first + len(lines)
            self.agents[name]["last_line"] = lines[-1]
        self.lines_pushed += len(lines)
        self.push(
            "logs",
            {
                "agent": name,
                "run_id": 1,
                "stream": stream,
                "first_seq": first,
                "count": len(lines),
                "ts": ts,
                "text": "\n".join(lines) + "\n",
            },
        )

    def _set_state(self, name: str, state: str, reason: str | None = None, kind: str | None = None) -> None:
        agent = self.agents[name]
        prev = agent["state"]
        agent["state"] = state
        agent["reason"] = reason
        agent["reason_kind"] = kind
        if prev != state:
            agent["since"] = self.clock()
        if state != "waiting":
            agent["waiting_since"] = None
        elif prev != "waiting":
            agent["waiting_since"] = self.clock()
        if state in ("stopped", "exited", "crashed"):
            agent["pid"] = None
            agent["uptime_s"] = None
        elif agent["pid"] is None:
            agent["pid"] = 5000 + len(self.calls)
            agent["uptime_s"] = 0.0
        self.push(
            "state",
            {"agent": name, "state": state, "prev": prev, "reason": reason, "pid": agent["pid"],
             "reason_kind": kind, "since": agent["since"]},
        )  # fmt: skip

    def _later(self, *steps: tuple[str, str], reason: str | None = None, kind: str | None = None) -> None:
        loop = asyncio.get_running_loop()
        for name, state in steps:
            loop.call_soon(self._set_state, name, state, reason, kind)

    def _names(self, args: dict[str, Any]) -> list[str]:
        if args.get("all"):
            return list(self.agents)
        names = args.get("names") or []
        for name in names:
            if name not in self.agents:
                raise UnknownAgent(f"no agent named {name!r}")
        return list(names)

    # -- FleetClient -------------------------------------------------------------

    async def call(self, op: str, **args: Any) -> dict[str, Any]:
        self.calls.append((op, args))
        if self.call_delay:
            await asyncio.sleep(self.call_delay)
        declared = operations().get(op)
        handler = getattr(self, f"_op_{op}", None)
        if declared is None or handler is None:
            raise ProtocolError(f"unknown op {op!r}")
        result: dict[str, Any] = handler(**declared.validate(args))
        return result

    async def subscribe(
        self, kinds: list[str] | None = None, *, logs_max_rate: float | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        entry = (queue, set(kinds) if kinds else None)
        self._queues.append(entry)
        if self.live and not self._tasks:
            self._tasks.append(asyncio.create_task(self._generate()))
            self._tasks.append(asyncio.create_task(self._stats()))
        try:
            while True:
                yield await queue.get()
        finally:
            self._queues.remove(entry)

    async def close(self) -> None:
        self.closed = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    # -- live generation ---------------------------------------------------------

    async def _generate(self) -> None:
        """Push one chunk per running agent every 50 ms, at ``lines_per_s`` of real time."""
        loop = asyncio.get_running_loop()
        last = loop.time()
        carry = 0.0
        i = 0
        while True:
            await asyncio.sleep(0.05)
            now = loop.time()
            carry += self.lines_per_s * min(now - last, 1.0)
            last = now
            n = int(carry)
            carry -= n
            if not n:
                continue
            for name, agent in self.agents.items():
                if agent["state"] != "running":
                    continue
                lines = [f"\x1b[32mok\x1b[0m processed batch {i + k} of {name}" for k in range(n)]
                self.push_lines(name, lines, "stdout")
            i += n

    async def _stats(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            for agent in self.agents.values():
                if agent["state"] == "running":
                    agent["uptime_s"] = (agent["uptime_s"] or 0.0) + 1.0
                    agent["tokens"] += 50
            self.push("stats", {"agents": [dict(a) for a in self.agents.values()], "gateway": self.gateway})

    # -- ops ---------------------------------------------------------------------

    def _op_ping(self) -> dict[str, Any]:
        return {"pid": 123, "fleet": self.fleet, "version": "0.1.0"}

    def _op_status(self) -> wire.Status:
        return {
            "fleet": self.fleet,
            "fleet_dir": f"/srv/{self.fleet}",
            "pid": 123,
            "version": "0.1.0",
            "policy_version": self.policy_version,
            "uptime_s": self.clock() - BASE_TS,
            "gateway": self.gateway,  # type: ignore[typeddict-item]
            "gateway_url": "http://127.0.0.1:4000",
            "approvals_pending": sum(1 for a in self.approvals.values() if a["status"] == "pending"),
            "log_pressure": False,
            "store": {"ok": True, "error": None, "since": None, "retries": 0, "backlog_bytes": 0, "unwritten": 0,
                      "dropped": 0},
            "isolation": "cgroup v2 (memory, pids, cpu): /sys/fs/cgroup/fleet",
            "dumpable": False,
            "daemon": {
                "pid": 123, "started_at": BASE_TS, "uptime_s": self.clock() - BASE_TS, "started_by": "console",
                "ready": True, "fleet_dir": f"/srv/{self.fleet}", "state_dir": f"/srv/{self.fleet}/.fleet",
                "log": f"/srv/{self.fleet}/.fleet/fleet.log", "watchdog_pid": 124, "stop_grace_s": 5.0,
            },
            "agents": [wire.AgentRow(**a) for a in self.agents.values()],
            "clients": [{"kind": "console", "pid": 200, "tty": "/dev/pts/1", "since": BASE_TS, "subscribed": True}],
        }

    def _op_pause(self, names: list[str] | None = None, all: bool = False) -> dict[str, Any]:
        named = self._names({"names": names, "all": all})
        targets = [n for n in named if self.agents[n]["state"] == "running"]
        for name in targets:
            self._later((name, "pausing"), (name, "paused"), reason="paused by operator", kind="operator")
        return {"agents": targets, "changed": targets}

    def _op_resume(self, names: list[str] | None = None, all: bool = False) -> dict[str, Any]:
        targets = [
            n for n in self._names({"names": names, "all": all}) if self.agents[n]["state"] in ("paused", "pausing")
        ]
        for name in targets:
            self._later((name, "running"))
        return {"agents": targets, "changed": targets}

    def _op_restart(self, names: list[str] | None = None, all: bool = False) -> dict[str, Any]:
        targets = self._names({"names": names, "all": all})
        for name in targets:
            self.agents[name]["restarts"] += 1
            self._later((name, "stopping"), (name, "starting"), (name, "running"))
        return {"agents": targets}

    def _op_stop(self, names: list[str] | None = None, all: bool = False) -> dict[str, Any]:
        targets = self._names({"names": names, "all": all})
        for name in targets:
            if self.agents[name]["state"] in ("stopped", "exited"):
                raise AgentError(f"{name} is not running")
            self._later((name, "stopping"), (name, "stopped"), reason="stopped by operator", kind="operator")
        return {"agents": targets}

    def _op_start(self, names: list[str] | None = None, all: bool = False) -> dict[str, Any]:
        targets = self._names({"names": names, "all": all})
        for name in targets:
            self._later((name, "starting"), (name, "running"))
        return {"agents": targets}

    def _op_logs(
        self,
        agent: str | None = None,
        n: int = 200,
        before_seq: int | None = None,
        grep: str | None = None,
        since: float | None = None,
        streams: list[str] | None = None,
        before: list[Any] | None = None,
    ) -> dict[str, Any]:
        if agent is None:
            rows = sorted(
                (r for log in self.logs.values() for r in log), key=lambda r: (r["ts"], r["agent"], r["seq"])
            )
            if before:
                cursor = (before[0], before[1], before[2])
                rows = [r for r in rows if (r["ts"], r["agent"], r["seq"]) < cursor]
        else:
            if agent not in self.logs:
                raise UnknownAgent(f"no agent named {agent!r}")
            rows = list(self.logs[agent])
            if before_seq is not None:
                rows = [r for r in rows if r["seq"] < before_seq]
        if grep:
            rows = [r for r in rows if grep in r["text"]]
        return {"lines": [dict(r) for r in rows[-n:]]}

    def _op_events(
        self, n: int = 200, kinds: list[str] | None = None, agent: str | None = None, since: float | None = None
    ) -> dict[str, Any]:
        events = [
            e for e in self.events
            if (not kinds or e["kind"] in kinds) and (agent is None or e["agent"] == agent)
            and (since is None or e["ts"] >= since)
        ]
        return {"events": events[-n:]}

    def _op_approvals(self, pending_only: bool = True) -> dict[str, Any]:
        return {"approvals": [dict(a) for a in self.approvals.values() if not pending_only or a["status"] == "pending"]}

    def add_approval(self, agent: str, action: str, details: dict[str, Any], timeout_s: float = 900) -> int:
        new_id = max(self.approvals, default=0) + 1
        approval: wire.Approval = {
            "id": new_id,
            "agent": agent,
            "action": action,
            "details": details,
            "status": "pending",
            "created": self.clock(),
            "timeout_s": timeout_s,
            "policy_version": self.policy_version,
        }
        self.approvals[new_id] = approval
        self.push("approval", dict(approval))
        return new_id

    def _decide(self, id: int, status: str, by: str, reason: str | None = None) -> wire.Approval:
        approval = self.approvals.get(id)
        if approval is None or approval["status"] != "pending":
            raise FleetError(f"no pending approval {id}")
        approval.update(status=status, decided_by=by, decided_at=self.clock(), reason=reason)
        asyncio.get_running_loop().call_soon(self.push, "approval", dict(approval))
        return wire.Approval(**approval)

    def _op_approve(self, id: int, by: str = "operator") -> wire.Approval:
        return self._decide(id, "approved", by)

    def _op_deny(self, id: int, reason: str = "", by: str = "operator") -> wire.Approval:
        return self._decide(id, "denied", by, reason or "denied by operator")

    def add_question(self, agent: str, question: str, choices: list[str] | None = None,
                     timeout_s: float = 900) -> int:
        new_id = max(self.questions, default=0) + 1
        q = {"id": new_id, "agent": agent, "question": question, "choices": list(choices or []),
             "status": "pending", "created": self.clock(), "asked_at": self.clock(), "timeout_s": timeout_s,
             "expires_at": self.clock() + timeout_s}
        self.questions[new_id] = q
        self._set_state(agent, "waiting", question)
        self.push("question", dict(q))
        return new_id

    def _op_questions(self) -> wire.Questions:
        return {"questions": [dict(q) for q in self.questions.values() if q["status"] == "pending"]}

    def _op_answer(self, id: int, text: str, by: str = "operator") -> wire.Answered:
        q = self.questions.get(id)
        if q is None or q["status"] != "pending":
            raise FleetError(f"no open question with id {id}")
        if q["choices"] and text not in q["choices"]:
            raise FleetError(f"answer one of: {', '.join(q['choices'])}")
        q.update(status="answered", answer=text, answered_by=by, answered_at=self.clock())
        loop = asyncio.get_running_loop()
        loop.call_soon(self.push, "question", dict(q))
        loop.call_soon(self._set_state, q["agent"], "running")
        return {**q, "agents": [q["agent"]]}

    def _op_send(self, name: str, text: str = "", eof: bool = False, raw: bool = False,
                 by: str = "operator") -> wire.Sent:
        agent = self.agents.get(name)
        if agent is None:
            raise UnknownAgent(f"no agent named {name!r}")
        if agent["state"] in ("stopped", "exited", "crashed"):
            raise AgentError(f"{name} is {agent['state']}: no process reads its input")
        self.inputs.setdefault(name, []).append((text, eof))
        waiting = agent["state"] == "waiting"
        if waiting:
            asyncio.get_running_loop().call_soon(self._set_state, name, "running")
        return {"agents": [name], "bytes": len(text) + 1, "eof": eof, "waiting": waiting, "state": agent["state"]}

    def _op_policy_files(self) -> dict[str, Any]:
        return {"files": [{"path": p, "text": t} for p, t in self.policy_files.items()]}

    def _check(self, path: str, text: str) -> list[dict[str, Any]]:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            match = re.search(r"line (\d+), column (\d+)", str(exc))
            line, col = (int(match.group(1)), int(match.group(2))) if match else (1, 1)
            return [{"path": path, "line": line, "col": col, "message": str(exc).split(" (at")[0]}]
        errors = []
        for key in data:
            if key not in KNOWN_TABLES:
                line = next((i + 1 for i, row in enumerate(text.splitlines()) if key in row), 1)
                errors.append({"path": path, "line": line, "col": 1, "message": f"unknown table [{key}]"})
        return errors

    def _op_policy_check(self, path: str, text: str) -> dict[str, Any]:
        return {"errors": self._check(path, text)}

    def _op_policy_write(self, path: str, text: str) -> dict[str, Any]:
        errors = self._check(path, text)
        loop = asyncio.get_running_loop()
        if errors:
            loop.call_soon(self.push, "policy_error", {"errors": errors})
            return {"errors": errors, "written": False}
        self.policy_files[path] = text
        self.policy_version += 1
        applied = {"version": self.policy_version, "hash": "cd34", "files": [path], **NOTHING_STARTED}
        loop.call_soon(self.push, "policy_applied", applied)
        return {"errors": [], "written": True, "agents": []}

    def _known(self, name: str) -> bool:
        """An instance or a group (``campaign-optimizer`` for its replicas)."""
        return name in self.agents or any(a["group"] == name for a in self.agents.values())

    def _override(self, name: str, key: str) -> tuple[bool, Any]:
        """The override that applies to ``name``: its own (a replica's), else its group's."""
        group = self.agents[name]["group"] if name in self.agents else name
        for target in (name, group):
            if (target, key) in self.overrides:
                return True, self.overrides[(target, key)]
        return False, None

    def _op_policy_show(self, name: str) -> dict[str, Any]:
        if not self._known(name):
            raise UnknownAgent(f"no agent named {name!r}")
        has_budget, budget = self._override(name, "budget.usd_per_day")
        has_model, model = self._override(name, "llm.model")
        budget = budget if has_budget else 2.0
        model = model if has_model else "fleet/demo"
        return {
            "agent": name,
            "version": self.policy_version,
            "unavailable": dict(self.unavailable),
            "policy": {
                "llm": {"model": model, "models": ["fleet/demo", "gpt-4o-mini", *self.unavailable]},
                "budget": {"usd_per_day": budget, "tokens_per_minute": 20000, "on_exhausted": "pause"},
                "tools": {"deny": ["shell"], "approve": ["send_email"]},
                "restart": {"mode": "on-failure", "max_restarts": 5},
            },
            "origins": {
                "llm.model": "policies/overrides.toml" if has_model else "policies/ops.toml",
                "llm.models": "policies/ops.toml",
                "budget.usd_per_day": "policies/overrides.toml" if has_budget else "policies/ops.toml",
                "budget.tokens_per_minute": "policies/ops.toml",
                "budget.on_exhausted": "policies/default.toml",
                "tools.deny": "policies/ops.toml",
                "tools.approve": "policies/ops.toml",
                "restart.mode": "built-in",
                "restart.max_restarts": "built-in",
            },
        }

    def _op_set_override(self, target: str, key: str, value: Any) -> dict[str, Any]:
        if not self._known(target):
            raise UnknownAgent(f"no agent named {target!r}")
        self.overrides[(target, key)] = value
        self.policy_version += 1
        asyncio.get_running_loop().call_soon(
            self.push,
            "policy_applied",
            {"version": self.policy_version, "hash": "ef56", "files": ["policies/overrides.toml"], **NOTHING_STARTED},
        )
        return {"target": target, "key": key, "value": value}

    def _op_usage(self, agent: str | None = None, n: int = 50) -> dict[str, Any]:
        names = [agent] if agent else list(self.agents)
        calls = []
        for name in names:
            for i in range(8):
                calls.append(
                    {
                        "agent": name,
                        "model": "fleet/demo" if i % 2 else "gpt-4o-mini",
                        "tokens_in": 300 + 10 * i,
                        "tokens_out": 80 + 5 * i,
                        "cost_usd": 0.0004 * (i + 1),
                        "latency_s": 0.4 + 0.1 * i,
                        "outcome": "error" if i == 5 else "ok",
                        "ts": self.clock() - 60.0 * (8 - i) - 5.0,
                        "error": "provider_error: timeout" if i == 5 else "",
                        "policy_version": self.policy_version,
                        "endpoint": "openai.chat" if i == 3 else "sdk",
                    }
                )
        return {"calls": calls[-n:]}

    def _op_metrics(self, agent: str | None = None) -> dict[str, Any]:
        names = [agent] if agent else list(self.agents)
        return {
            "metrics": {
                name: {"queue_depth": [[BASE_TS + 10.0 * i, float((i * 7) % 11)] for i in range(40)]} for name in names
            }
        }

    def _op_shutdown(self) -> dict[str, Any]:
        self.shut_down = True
        for name, agent in self.agents.items():
            if agent["state"] not in ("stopped", "exited"):
                self._later((name, "stopped"))
        return {"stopping": True}
