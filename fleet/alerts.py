"""Alerts: policy rules evaluated continuously, and alerts raised by agents, through one path.

Rules (thresholds from each agent's live ``[alerts]`` policy):

- ``stalled`` — a running agent printed nothing and made no progress for
  ``silence_s`` (an agent waiting for a task, for a human's approval or for
  its input is idle, not stalled);
- ``waiting`` — an agent has been ``waiting`` for its operator (blocked reading
  its input, or asking with ``ctx.ask``) for ``waiting_s``;
- ``error_rate`` — share of failed LLM calls and failed tasks within
  ``error_window_s`` reaches ``error_rate`` (from at least ``MIN_SAMPLES``);
- ``cost_rate`` — spend in the trailing hour above ``cost_per_hour_usd``;
- ``budget_warn`` / ``budget_exhausted`` — ``budget_warn_pct`` % and 100 % of
  ``usd_per_day`` spent today (the gateway's totals);
- ``crash_loop`` — published by the supervisor itself; counted here while the
  agent stays in ``crash-loop``;
- ``task_dead`` — a task gave up after its last attempt;
- anything an agent raises with ``ctx.alert`` (its own rule name).

Why one engine with a cheap timer: the conditions are sliding windows over
data the supervisor already has in memory (last output times, gateway totals,
the usage and task outcome streams), so a ~1 s tick costs a few operations
per agent and never touches the store. Each alert is de-duplicated per
agent + rule: while open a repeat is only counted; a rule whose condition clears
closes it (``alert_cleared`` event), an event-like alert (agent-raised, dead
task) closes after ``cooldown_s`` without a repeat, and a condition still true
after ``cooldown_s`` fires again as a reminder. An alert's ``count`` is its
distinct occurrences (each ``ctx.alert``, each dead task), never evaluation
ticks: a condition that stays true is one occurrence however long it lasts,
reminders included; once cleared, its next occurrence is a new alert.
Firing publishes (persisted, pushed) an ``alert`` event and carries out the agent's ``alerts.action``:
``pause`` pauses it, audited with origin ``policy``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fleet.records import AgentState, Event, UsageRecord

if TYPE_CHECKING:
    from fleet.supervisor.core import Supervisor
    from fleet.supervisor.instance import AgentInstance

S = AgentState
TICK_S = 1.0
#: Longest sleep between evaluations when nothing can change with time alone (a new
#: day renews budgets): an idle fleet of 200 agents is evaluated once a minute, not
#: every second.
IDLE_TICK_S = 60.0
COOLDOWN_S = 300.0
#: error_rate needs at least this many outcomes in its window before it may fire.
MIN_SAMPLES = 3
SPEND_WINDOW_S = 3600.0
SEVERITIES = ("info", "warning", "error", "critical")
#: Rules whose condition the engine re-evaluates (they close when it turns false).
CONDITION_RULES = frozenset({"stalled", "waiting", "error_rate", "cost_rate", "budget_warn", "budget_exhausted"})
KEEP_RECENT = 500
#: Open alerts one agent may have: an agent raising ``ctx.alert`` under ever-new rule
#: names would otherwise grow ``open`` without bound. Past it, its new rules are counted
#: in one ``too_many_alerts`` alert.
MAX_OPEN_PER_AGENT = 32
OVERFLOW_RULE = "too_many_alerts"
#: Bytes of JSON an alert's ``fields`` may hold; bigger ones are cut to a string of that size.
MAX_FIELDS_BYTES = 4096


@dataclass(eq=False)
class Alert:
    agent: str | None
    rule: str
    severity: str
    message: str
    opened: float
    fired: float
    last: float
    count: int = 1
    fields: dict[str, Any] = field(default_factory=dict)
    action: str = "notify"
    silent: bool = False  # published by someone else (crash_loop): counted, not re-published

    def wire(self, state: str = "open") -> dict[str, Any]:
        return {
            "agent": self.agent,
            "rule": self.rule,
            "severity": self.severity,
            "message": self.message,
            "opened": self.opened,
            "last": self.last,
            "count": self.count,
            "fields": self.fields,
            "action": self.action,
            "state": state,
        }


class _Window:
    """A sliding window of (ts, value) with running sums: O(1) per sample, amortised."""

    __slots__ = ("items", "n_bad", "total")

    def __init__(self) -> None:
        self.items: deque[tuple[float, float]] = deque()
        self.total = 0.0
        self.n_bad = 0

    def add(self, ts: float, value: float) -> None:
        self.items.append((ts, value))
        self.total += value
        if value:
            self.n_bad += 1

    def prune(self, before: float) -> None:
        items = self.items
        while items and items[0][0] < before:
            _, v = items.popleft()
            self.total -= v
            if v:
                self.n_bad -= 1
        if not items:
            self.total = 0.0


class AlertEngine:
    """Evaluates the rules, keeps open alerts, carries out actions."""

    def __init__(
        self, sup: Supervisor, *, cooldown_s: float = COOLDOWN_S, clock: Callable[[], float] = time.time
    ) -> None:
        self.sup = sup
        self.cooldown_s = cooldown_s
        self._clock = clock
        self.open: dict[tuple[str | None, str], Alert] = {}
        #: Open alerts per agent, replaced whenever ``open`` changes (see ``count``).
        self.counts: dict[str | None, int] = {}
        self.recent: deque[dict[str, Any]] = deque(maxlen=KEEP_RECENT)
        self._outcomes: dict[str, _Window] = {}  # value 1.0 = failure, 0.0 = success
        self._spend: dict[str, _Window] = {}
        self._active: dict[str, float] = {}  # wall time of the latest SDK activity seen here
        self.fired = 0
        #: Seconds until the next evaluation could change anything (set by ``tick``).
        self.next_due = 0.0
        self._poke = asyncio.Event()
        self._last_tick = 0.0

    def poke(self) -> None:
        """Something happened (usage, a task, a state change, a policy): evaluate soon."""
        self._poke.set()

    # --- counting -------------------------------------------------------------------
    def count(self, agent: str) -> int:
        """Open alerts of ``agent`` (``fleet status``'s ``alerts`` column); safe from any thread."""
        return self.counts.get(agent, 0)

    def _opened_or_closed(self) -> None:
        """Publish the open counts per agent anew (a new dict: readers on other threads never see it change)."""
        counts: dict[str | None, int] = {}
        for a, _rule in self.open:
            counts[a] = counts.get(a, 0) + 1
        self.counts = counts

    def open_alerts(self, agent: str | None = None) -> list[dict[str, Any]]:
        return [a.wire() for a in self.open.values() if agent is None or a.agent == agent]

    # --- raising --------------------------------------------------------------------
    def fire(
        self,
        agent: str | None,
        rule: str,
        severity: str,
        message: str,
        fields: dict[str, Any] | None = None,
        *,
        occurrence: bool = True,
    ) -> Alert | None:
        """Raise an alert; returns it when it was published (not a duplicate within the cool-down).

        ``occurrence=False``: the condition of an open alert is still true (the timer's
        re-evaluation); its message and fields are refreshed but it is not counted again.
        """
        now = self._clock()
        severity = severity if severity in SEVERITIES else "warning"
        key = (agent, rule)
        al = self.open.get(key)
        fields = _bounded_fields(fields)
        if al is None and agent is not None and rule != OVERFLOW_RULE and self.count(agent) >= MAX_OPEN_PER_AGENT:
            return self.fire(agent, OVERFLOW_RULE, "warning",
                             f"more than {MAX_OPEN_PER_AGENT} open alerts; latest: {rule}: {message}"[:2000],
                             {"rule": rule})
        if al is not None:
            if occurrence:
                al.count += 1
            al.last = now
            al.message = message
            if fields:
                al.fields = fields
            if al.silent or now - al.fired < self.cooldown_s:
                return None
            al.fired = now
        else:
            al = Alert(agent, rule, severity, message, now, now, now, fields=dict(fields or {}))
            self.open[key] = al
            self._opened_or_closed()
        inst = self.sup.instances.get(agent) if agent else None
        al.action = inst.policy.alerts.action if inst is not None else "notify"
        self.fired += 1
        data = {k: v for k, v in al.wire().items() if k != "agent"}
        self.recent.append({**data, "agent": agent, "ts": now})
        self.sup.publish("alert", agent, data)
        # Pausing an agent that waits for its operator would only hide the question.
        if inst is not None and al.action == "pause" and severity != "info" and rule != "waiting":
            self._pause(inst, al)
        return al

    def _pause(self, inst: AgentInstance, al: Alert) -> None:
        kind = "budget" if al.rule.startswith("budget") else "alert"  # a raised budget lifts it: say so
        if not inst.pause(f"alert {al.rule}: {al.message}"[:200], kind):
            return
        details = {"rule": al.rule, "severity": al.severity, "message": al.message, "alert_opened": al.opened}
        store = self.sup.store
        if store is not None:
            self.sup.spawn(store.audit("pause", inst.name, "policy", details))
        self.sup.publish(
            "audit", None, {"action": "pause", "target": inst.name, "origin": "policy", "details": details}
        )

    def clear(self, agent: str | None, rule: str, why: str = "") -> None:
        al = self.open.pop((agent, rule), None)
        if al is None:
            return
        self._opened_or_closed()
        if al.silent:
            return
        now = self._clock()
        data = {**{k: v for k, v in al.wire("cleared").items() if k != "agent"}, "cleared": now, "why": why}
        self.recent.append({**data, "agent": agent, "ts": now})
        # Its own kind: a console that toasts every "alert" must not toast a recovery.
        self.sup.publish("alert_cleared", agent, data)
        if self.sup.store is not None:
            self.sup.spawn(self.sup.store.add_event(Event("alert_cleared", agent, data, now)))

    # --- hooks ------------------------------------------------------------------------
    def on_usage(self, rec: UsageRecord) -> None:
        self.poke()
        ts = rec.ts or self._clock()
        self._active[rec.agent] = ts
        if rec.outcome in ("ok", "error", "timeout"):
            self._window(self._outcomes, rec.agent).add(ts, 0.0 if rec.outcome == "ok" else 1.0)
        if rec.cost_usd:
            self._window(self._spend, rec.agent).add(ts, float(rec.cost_usd))

    def on_task(self, agent: str | None, data: dict[str, Any]) -> None:
        self.poke()
        if agent is None:
            return
        now = self._clock()
        self._active[agent] = now
        state, outcome = data.get("state"), data.get("outcome")
        if state == "done":
            self._window(self._outcomes, agent).add(now, 0.0)
        elif outcome in ("failed", "lost") or state == "failed":
            self._window(self._outcomes, agent).add(now, 1.0)
        if state == "dead":
            self.fire(
                agent,
                "task_dead",
                "error",
                f"task {data.get('id')} ({data.get('kind')}) is dead: {data.get('reason')}",
                {"task": data.get("id"), "kind": data.get("kind")},
            )

    def on_agent_alert(self, inst: AgentInstance, data: dict[str, Any]) -> None:
        self.poke()
        self._active[inst.name] = self._clock()
        fields = data.get("fields") if isinstance(data.get("fields"), dict) else {}
        self.fire(
            inst.name,
            str(data.get("rule") or "agent"),
            str(data.get("severity") or "warning"),
            str(data.get("message") or ""),
            fields,
        )

    def on_state(self, inst: AgentInstance, prev: AgentState) -> None:
        self.poke()
        key = (inst.name, "crash_loop")
        if inst.state is S.CRASH_LOOP:
            now = self._clock()
            if key not in self.open:
                self.open[key] = Alert(
                    inst.name, "crash_loop", "error", inst.reason or "crash loop", now, now, now, silent=True
                )
                self._opened_or_closed()
        elif key in self.open and inst.state is not S.CRASH_LOOP:
            self.open.pop(key, None)
            self._opened_or_closed()
        if inst.state is S.RUNNING:
            # Started or resumed: idle time counts from now (a pause is not a stall).
            self._active[inst.name] = self._clock()
        elif not inst.state.alive or inst.state is S.WAITING:
            self.clear(inst.name, "stalled", f"agent {inst.state.value}")
        if inst.state is not S.WAITING:
            self.clear(inst.name, "waiting", f"agent {inst.state.value}")

    @staticmethod
    def _window(table: dict[str, _Window], agent: str) -> _Window:
        w = table.get(agent)
        if w is None:
            w = table[agent] = _Window()
        return w

    # --- the timer ------------------------------------------------------------------
    def tick(self) -> None:
        """Evaluate every rule for every agent once; cheap (no I/O)."""
        sup = self.sup
        now = self._clock()
        mono = time.monotonic()
        queue = sup.services.tasks
        waiting = queue.waiting_agents() if queue is not None else set()
        approvals = sup.services.approvals
        asking = {a.get("agent") for a in approvals.pending()} if approvals is not None else set()
        gateway = sup.gateway
        due = IDLE_TICK_S
        for inst in list(sup.instances.values()):
            name = inst.name
            rules = inst.policy.alerts
            # stalled
            if inst.state is S.RUNNING and rules.silence_s is not None and inst.run is not None:
                last = max(
                    sup.loghub.last_output.get(name, 0.0),
                    now - (mono - inst.last_progress),
                    self._active.get(name, 0.0),
                    inst.run.started,
                )
                if name in waiting or name in asking:
                    self._active[name] = last = now
                idle = now - last
                if idle >= rules.silence_s:
                    self.fire(
                        name,
                        "stalled",
                        "warning",
                        f"no output or progress for {idle:.0f}s (alerts.silence_s = {rules.silence_s:g})",
                        {"idle_s": round(idle, 1)},
                        occurrence=False,
                    )
                else:
                    self.clear(name, "stalled", "output resumed")
                    due = min(due, rules.silence_s - idle)
            # waiting for the operator
            if inst.state is S.WAITING and rules.waiting_s is not None and inst.waiting_since is not None:
                waited = mono - inst.waiting_since
                if waited >= rules.waiting_s:
                    question = f": {inst.reason}" if inst.reason else ""
                    self.fire(
                        name,
                        "waiting",
                        "warning",
                        f"waiting for its operator for {waited:.0f}s{question} "
                        f"(alerts.waiting_s = {rules.waiting_s:g})",
                        {"waiting_s": round(waited, 1)},
                        occurrence=False,
                    )
                else:
                    due = min(due, rules.waiting_s - waited)
            # error rate
            outcomes = self._outcomes.get(name)
            if outcomes is not None:
                outcomes.prune(now - rules.error_window_s)
                n, bad = len(outcomes.items), outcomes.n_bad
                rate = bad / n if n else 0.0
                if rules.error_rate is not None and n >= MIN_SAMPLES and bad and rate >= rules.error_rate:
                    self.fire(
                        name,
                        "error_rate",
                        "error",
                        f"{bad} of {n} LLM calls and tasks failed in {rules.error_window_s:g}s "
                        f"({rate:.0%} ≥ alerts.error_rate {rules.error_rate:.0%})",
                        {"rate": round(rate, 3), "failures": bad, "samples": n},
                        occurrence=False,
                    )
                elif (name, "error_rate") in self.open:
                    self.clear(name, "error_rate", f"error rate down to {rate:.0%}")
            # cost burn rate
            spend = self._spend.get(name)
            if spend is not None:
                spend.prune(now - SPEND_WINDOW_S)
                limit = rules.cost_per_hour_usd
                if limit is not None and spend.total > limit:
                    self.fire(
                        name,
                        "cost_rate",
                        "warning",
                        f"spent ${spend.total:.4f} in the last hour (alerts.cost_per_hour_usd = {limit:g})",
                        {"usd_last_hour": round(spend.total, 6)},
                        occurrence=False,
                    )
                elif (name, "cost_rate") in self.open:
                    self.clear(name, "cost_rate", "spend rate back under the limit")
            # daily budget
            if gateway is not None and inst.policy.budget.usd_per_day is not None:
                used = gateway.totals(name, inst.policy).get("budget_used")
                self._budget(name, used, rules.budget_warn_pct, inst.policy.budget.usd_per_day)
        # event-like alerts close after a quiet cool-down
        for (agent, rule), al in list(self.open.items()):
            if rule not in CONDITION_RULES and not al.silent and now - al.last >= self.cooldown_s:
                self.clear(agent, rule, "no repeat within the cool-down")
            elif rule in CONDITION_RULES and agent not in sup.instances:
                self.clear(agent, rule, "agent removed")
        # Open alerts and recent outcomes or spend change with time: look again each second.
        windows = any(w.items for w in self._outcomes.values()) or any(w.items for w in self._spend.values())
        self.next_due = 0.0 if self.open or windows else max(0.0, due)

    def _budget(self, name: str, used: float | None, warn_pct: float, usd: float) -> None:
        if used is None:
            return
        if used >= 1.0:
            self.fire(
                name,
                "budget_exhausted",
                "error",
                f"spent 100% of budget.usd_per_day (${usd:g}) today",
                {"budget_used": round(used, 4)},
                occurrence=False,
            )
        else:
            self.clear(name, "budget_exhausted", "budget renewed")
        if used * 100 >= warn_pct:
            self.fire(
                name,
                "budget_warn",
                "warning",
                f"spent {used:.0%} of budget.usd_per_day (${usd:g}) today (alerts.budget_warn_pct = {warn_pct:g})",
                {"budget_used": round(used, 4)},
                occurrence=False,
            )
        else:
            self.clear(name, "budget_warn", "budget renewed")

    async def run(self, interval: float = TICK_S) -> None:
        """Evaluate every ``interval`` while anything is in flight; otherwise sleep until the
        next time-based change (an agent's ``silence_s`` running out) or until poked."""
        loop = asyncio.get_running_loop()
        while True:
            wait = max(interval, self.next_due)
            # asyncio.timeout, not wait_for: 3.11's wait_for swallows a cancellation that lands
            # as the poke comes, and the evaluator then outlived a supervisor shutting down.
            try:
                async with asyncio.timeout(wait):
                    await self._poke.wait()
            except TimeoutError:
                pass
            self._poke.clear()
            # Pokes come with every LLM call: never evaluate more often than once per interval.
            rest = self._last_tick + interval - loop.time()
            if rest > 0:
                await asyncio.sleep(rest)  # a rate limit, not synchronisation
            self._last_tick = loop.time()
            try:
                self.tick()
            except Exception as exc:  # a rule bug must not stop the others next second
                print(f"fleet: alert evaluation failed: {exc!r}", file=sys.stderr)

    # --- reading ----------------------------------------------------------------------
    async def listing(self, open_only: bool = False, n: int = 100, agent: str | None = None) -> list[dict]:
        """Open alerts, or the recent history (newest last) with each entry's current state."""
        if open_only:
            return self.open_alerts(agent)
        store = self.sup.store
        if store is None:
            items = [dict(a) for a in self.recent if agent is None or a.get("agent") == agent]
            return items[-n:]
        await store.flush()  # alerts published a moment ago are in the writer's queue
        evs = await store.events(n=n, kinds=["alert", "alert_cleared"], agent=agent)
        out = []
        for ev in evs:
            d = {**ev.data, "agent": ev.agent, "ts": ev.ts, "event": ev.kind}
            if ev.kind == "alert":
                al = self.open.get((ev.agent, d.get("rule", "")))
                d["state"] = "open" if al is not None and (al.opened == d.get("opened") or al.silent) else "closed"
            out.append(d)
        return out


def attach(sup: Supervisor, *, cooldown_s: float = COOLDOWN_S, interval: float = TICK_S) -> AlertEngine:
    """Create the engine for ``sup``, hook it in and start its timer (its op is ``alerts``)."""
    engine = AlertEngine(sup, cooldown_s=cooldown_s)
    sup.services.alerts = engine
    hooks = sup.hooks
    hooks.on_usage.append(engine.on_usage)
    hooks.on_task.append(engine.on_task)
    hooks.on_agent_alert.append(engine.on_agent_alert)
    hooks.on_state.append(engine.on_state)
    hooks.on_policy.append(lambda _book: engine.poke())
    sup.spawn(engine.run(interval))
    return engine


__all__ = ["AlertEngine", "attach"]


def _bounded_fields(fields: dict[str, Any] | None) -> dict[str, Any] | None:
    """``fields`` as given if its JSON stays under ``MAX_FIELDS_BYTES``, else cut to a string."""
    if not fields:
        return fields
    try:
        text = json.dumps(fields, ensure_ascii=False, default=str)
    except (TypeError, ValueError, RecursionError):
        return {"truncated": "fields not serialisable"}
    if len(text.encode()) <= MAX_FIELDS_BYTES:
        return fields
    return {"truncated": text.encode()[:MAX_FIELDS_BYTES].decode("utf-8", "ignore")}
