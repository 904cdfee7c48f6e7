"""The fleet's task queue: who gets which task, leases, retries, dead tasks.

Decisions:

- **Memory first, store as journal.** Allocation happens at every ``next_task``
  and every finished task; it reads the live policy (``inst.policy``, the
  book's ``[fleet].allocation``) and in-memory heaps, never the database. Each
  transition is submitted to the store's single writer as it happens (so the
  journal has the same order as the events); ``add`` and ``done`` are awaited
  before the caller hears back, so an acknowledged task or result is on disk.
- **Leases belong to a process run**, not to an agent name: ``done`` from
  anything but the run that holds the lease is refused, so a task is never
  acknowledged twice. A lease is renewed while its process lives; when the
  instance reaches a dead state its leases go back to the queue at once, and
  after a supervisor restart leases of the old runs are taken back when they
  expire (``task_lease_s``).
- **Every attempt counts** — a failure with ``retry=True``, a crash, a kill, a
  stop — up to ``task_max_attempts``; then the task is ``dead`` with the reason.
- **Waiting agents are served by strategy.** An agent blocked in
  ``next_task`` is a waiter; when work appears, eligible waiters (running, not
  paused, under ``tasks.concurrency``, accepting the kind) are offered it
  highest ``tasks.priority`` first, then by strategy: ``least-loaded`` (fewest
  tasks held, then longest waiting) or ``round-robin`` (the agent served least
  recently first).
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import heapq
import itertools
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fleet.errors import FleetError
from fleet.records import AgentState
from fleet.supervisor.seams import fire

if TYPE_CHECKING:
    from fleet.supervisor.core import Supervisor
    from fleet.supervisor.instance import AgentInstance

S = AgentState
STATES = ("queued", "leased", "done", "failed", "dead")
MAX_KIND = 100
#: Finished tasks kept in memory when there is no store (tests, embedded use).
KEEP_FINISHED = 1000


class TaskError(FleetError):
    """A task operation that cannot be done (unknown task, not leased by the caller ...)."""

    code = "task_error"


@dataclass(eq=False, slots=True)
class TaskRec:
    """A queued or leased task as the queue keeps it."""

    id: int
    kind: str
    payload: Any
    priority: int
    created: float
    state: str = "queued"
    attempt: int = 0
    owner: str | None = None
    run_id: int | None = None
    leased_at: float | None = None
    expires: float | None = None
    error: str | None = None
    result: Any = None
    finished_at: float | None = None
    added_by: str | None = None

    def offer(self) -> dict[str, Any]:
        """What ``ctx.next_task`` receives."""
        return {
            "id": self.id,
            "kind": self.kind,
            "payload": self.payload,
            "attempt": self.attempt,
            "priority": self.priority,
        }

    def wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "payload": self.payload,
            "priority": self.priority,
            "state": self.state,
            "attempt": self.attempt,
            "agent": self.owner,
            "run_id": self.run_id,
            "created": self.created,
            "leased_at": self.leased_at,
            "lease_expires": self.expires,
            "finished_at": self.finished_at,
            "error": self.error,
            "result": self.result,
            "added_by": self.added_by,
        }


@dataclass(eq=False)
class _Waiter:
    inst: AgentInstance
    kinds: tuple[str, ...] | None
    seq: int
    fut: asyncio.Future[TaskRec] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class TaskQueue:
    """Queue, allocation and leases for one supervisor."""

    def __init__(self, sup: Supervisor, *, clock: Callable[[], float] = time.time) -> None:
        self.sup = sup
        self.store = sup.store
        self._clock = clock
        self._ready: dict[str, list[tuple[int, int, TaskRec]]] = {}  # kind -> heap of (-priority, id, task)
        self._ready_n = 0
        self._open: dict[int, TaskRec] = {}  # queued + leased
        self._has_open = asyncio.Event()  # wakes the lease ticker, which sleeps while nothing is open
        self._held: dict[str, set[int]] = {}  # instance name -> leased task ids
        self._waiters: list[_Waiter] = []
        self._seq = itertools.count()
        self._served: dict[str, int] = {}  # instance name -> seq of its last task (round-robin)
        self._finished: deque[TaskRec] = deque(maxlen=KEEP_FINISHED)
        self._ids = itertools.count(1)
        self._noted_no_kinds: set[tuple[str, int]] = set()
        self.counts = dict.fromkeys(STATES, 0)  # transitions seen by this process (done, dead ...)

    # --- settings read live --------------------------------------------------------
    @property
    def max_attempts(self) -> int:
        return int(self.sup.book.fleet.task_max_attempts)

    @property
    def lease_s(self) -> float:
        return float(self.sup.book.fleet.task_lease_s)

    @property
    def strategy(self) -> str:
        return str(self.sup.book.fleet.allocation)

    # --- start-up ------------------------------------------------------------------
    async def load(self) -> None:
        """Take back the open tasks of earlier runs; leases whose time is up are requeued now."""
        if self.store is None:
            return
        now = self._clock()
        for row in await self.store.open_tasks():
            t = TaskRec(
                row["id"],
                row["kind"],
                row["payload"],
                int(row["priority"]),
                float(row["created"]),
                attempt=int(row["attempt"] or 0),
                error=row["error"],
                added_by=row["added_by"],
            )
            self._open[t.id] = t
            self._has_open.set()
            if row["state"] == "leased":
                # Held by a process of an earlier supervisor: no live run can finish it.
                t.state, t.owner, t.run_id = "leased", row["agent"], row["run_id"]
                t.leased_at, t.expires = row["leased_at"], float(row["lease_expires"] or 0.0)
                if t.expires <= now:
                    self._lost(t, f"lease of {t.owner} expired while the supervisor was down")
            else:
                self._push(t)

    # --- adding --------------------------------------------------------------------
    async def add(self, kind: str, payload: Any = None, priority: int = 0, *, by: str | None = None,
                  unique: bool = False) -> TaskRec:
        """Queue one task; with ``unique``, an identical task (kind and payload) still queued is
        returned instead, so a periodic job never piles up work behind busy or paused takers."""
        if unique:
            for t in self._open.values():
                if t.state == "queued" and t.kind == kind and t.payload == payload:
                    return t
        return (await self.add_many([(kind, payload, priority)], by=by))[0]

    async def add_many(self, items: list[tuple[str, Any, int]], *, by: str | None = None) -> list[TaskRec]:
        """Queue tasks; resolves once they are committed, then offers them to waiting agents."""
        now = self._clock()
        checked = [(_check_kind(k), p, _check_priority(pr)) for k, p, pr in items]
        if self.store is not None:
            ids = await self.store.add_tasks([(k, p, pr, now, by) for k, p, pr in checked])
        else:
            ids = [next(self._ids) for _ in checked]
        out = []
        for tid, (kind, payload, priority) in zip(ids, checked, strict=True):
            t = TaskRec(tid, kind, payload, priority, now, added_by=by)
            self._open[tid] = t
            self._has_open.set()
            self._push(t)
            self._event(t, None, f"added by {by}" if by else None)
            out.append(t)
        self._dispatch()
        return out

    def _push(self, t: TaskRec) -> None:
        t.state = "queued"
        heapq.heappush(self._ready.setdefault(t.kind, []), (-t.priority, t.id, t))
        self._ready_n += 1

    # --- taking --------------------------------------------------------------------
    def accepts(self, inst: AgentInstance, kind: str, kinds: tuple[str, ...] | None = None) -> bool:
        """Whether ``inst``'s current policy (narrowed by the agent's own ``kinds``) takes ``kind``."""
        allowed = inst.policy.tasks.kinds
        if not any(p == kind or fnmatch.fnmatchcase(kind, p) for p in allowed):
            return False
        return kinds is None or any(p == kind or fnmatch.fnmatchcase(kind, p) for p in kinds)

    def load_of(self, name: str) -> int:
        return len(self._held.get(name, ()))

    def eligible(self, inst: AgentInstance) -> bool:
        """Running, not paused, with a free slot under ``tasks.concurrency``."""
        return (
            inst.state is S.RUNNING
            and not inst.want_paused
            and inst.run is not None
            and self.load_of(inst.name) < inst.policy.tasks.concurrency
        )

    def _take(self, inst: AgentInstance, kinds: tuple[str, ...] | None) -> TaskRec | None:
        best: tuple[int, int, TaskRec] | None = None
        best_kind = ""
        for kind, heap in self._ready.items():
            if heap and (best is None or heap[0] < best) and self.accepts(inst, kind, kinds):
                best, best_kind = heap[0], kind
        if best is None:
            return None
        heapq.heappop(self._ready[best_kind])
        self._ready_n -= 1
        t = best[2]
        self._lease(t, inst)
        return t

    def _lease(self, t: TaskRec, inst: AgentInstance) -> None:
        assert inst.run is not None
        now = self._clock()
        t.state = "leased"
        t.attempt += 1
        t.owner, t.run_id = inst.name, inst.run.run_id
        t.leased_at, t.expires = now, now + self.lease_s
        self._held.setdefault(inst.name, set()).add(t.id)
        self._served[inst.name] = next(self._seq)
        if self.store is not None:
            _quiet(self.store.task_lease(t.id, inst.name, t.run_id, t.attempt, t.expires, now))
        self._event(t, inst.name, None)

    async def next_for(
        self, inst: AgentInstance, kinds: list[str] | None = None, timeout: float | None = None
    ) -> dict[str, Any] | None:
        """``ctx.next_task``: a task now, or wait (``timeout`` seconds at most; None for ever)."""
        want = tuple(str(k) for k in kinds) if kinds else None
        if not inst.policy.tasks.kinds and inst.run is not None:
            key = (inst.name, inst.run.run_id)
            if key not in self._noted_no_kinds:
                self._noted_no_kinds.add(key)
                self.sup.note(inst.name, "waiting for tasks, but its policy accepts no kinds (tasks.kinds)")
        if self.eligible(inst):
            t = self._take(inst, want)
            if t is not None:
                return t.offer()
        if timeout is not None and timeout <= 0:
            return None
        w = _Waiter(inst, want, next(self._seq))
        self._waiters.append(w)
        run_id = inst.run.run_id if inst.run else None
        handed = False
        try:
            done, _ = await asyncio.wait({w.fut}, timeout=timeout)
            if not done:
                return None
            handed = True
            return w.fut.result().offer()
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(w)
            if w.fut.done() and not handed:
                # Assigned at the very moment the call ended (agent gone, timeout): give it back.
                self._give_back(w.fut.result(), inst.name, run_id)
            elif not w.fut.done():
                w.fut.cancel()

    def _give_back(self, t: TaskRec, owner: str, run_id: int | None, why: str = "offer not delivered") -> None:
        """Requeue a leased task without counting the attempt (it never really ran)."""
        if t.state != "leased" or t.owner != owner or t.run_id != run_id:
            return
        self._release(t)
        now = self._clock()
        if self.store is not None:
            _quiet(self.store.task_unlease(t.id, t.attempt, now))
        t.attempt -= 1
        t.owner = t.run_id = t.leased_at = t.expires = None
        self._push(t)
        self._event(t, owner, why)
        self._dispatch()

    def _strategy_key(self) -> Callable[[_Waiter], tuple[int, ...]]:
        served = self._served
        if self.strategy == "round-robin":
            return lambda w: (-w.inst.policy.tasks.priority, served.get(w.inst.name, -1), w.seq)
        return lambda w: (-w.inst.policy.tasks.priority, self.load_of(w.inst.name), w.seq)

    def _dispatch(self) -> None:
        """Offer ready tasks to waiting agents, in the strategy's order."""
        if not self._ready_n or not self._waiters:
            return
        progress = True
        while progress and self._ready_n:
            progress = False
            candidates = [w for w in self._waiters if not w.fut.done() and self.eligible(w.inst)]
            if not candidates:
                return
            candidates.sort(key=self._strategy_key())
            for w in candidates:
                t = self._take(w.inst, w.kinds)
                if t is not None:
                    w.fut.set_result(t)
                    progress = True
                    break  # loads and turns changed: re-sort for the next task

    def waiting_agents(self) -> set[str]:
        """Instances blocked in ``next_task`` right now (idle, not stalled)."""
        return {w.inst.name for w in self._waiters}

    def wake(self) -> None:
        """Re-run allocation (an agent resumed, a policy changed)."""
        self._dispatch()

    # --- finishing -----------------------------------------------------------------
    def _held_by(self, inst: AgentInstance, task_id: int) -> TaskRec:
        t = self._open.get(int(task_id))
        run_id = inst.run.run_id if inst.run else None
        if t is None or t.state != "leased" or t.owner != inst.name or t.run_id != run_id:
            state = t.state if t is not None else "unknown or finished"
            holder = f" by {t.owner}" if t is not None and t.owner and t.owner != inst.name else ""
            raise TaskError(f"task {task_id} is not leased to this run of {inst.name} (it is {state}{holder})")
        return t

    async def done(self, inst: AgentInstance, task_id: int, result: Any = None) -> dict[str, Any]:
        t = self._held_by(inst, task_id)
        now = self._clock()
        self._release(t)
        t.state, t.result, t.finished_at, t.expires = "done", result, now, None
        self._open.pop(t.id, None)
        self._finished.append(t)
        fut = self.store.task_finish(t.id, t.attempt, "done", "done", now, result=result) if self.store else None
        self._event(t, inst.name, None, latency_s=round(now - (t.leased_at or now), 6))
        self._dispatch()
        if fut is not None:
            await fut
        return {"id": t.id, "state": "done"}

    async def fail(self, inst: AgentInstance, task_id: int, error: str, retry: bool = True) -> dict[str, Any]:
        t = self._held_by(inst, task_id)
        error = str(error)[:2000] or "failed"
        if not retry:
            fut = self._end(t, "failed", "failed", error, f"failed: {error}")
        elif t.attempt >= self.max_attempts:
            fut = self._end(
                t, "dead", "failed", error, f"failed {t.attempt} of {self.max_attempts} attempts; last: {error}"
            )
        else:
            fut = self._requeue(t, "failed", error, f"failed (attempt {t.attempt} of {self.max_attempts}): {error}")
        if fut is not None:
            await fut
        return {"id": t.id, "state": t.state}

    def _release(self, t: TaskRec) -> None:
        if t.owner is not None:
            held = self._held.get(t.owner)
            if held is not None:
                held.discard(t.id)

    def _requeue(self, t: TaskRec, outcome: str, error: str, reason: str) -> asyncio.Future[None] | None:
        owner = t.owner
        now = self._clock()
        self._release(t)
        fut = self.store.task_finish(t.id, t.attempt, "queued", outcome, now, error=error) if self.store else None
        t.owner = t.run_id = t.leased_at = t.expires = None
        t.error = error
        self._push(t)
        self._event(t, owner, reason, outcome=outcome)
        self._dispatch()
        return fut

    def _end(self, t: TaskRec, state: str, outcome: str, error: str, reason: str) -> asyncio.Future[None] | None:
        owner = t.owner
        now = self._clock()
        self._release(t)
        fut = self.store.task_finish(t.id, t.attempt, state, outcome, now, error=error) if self.store else None
        t.state, t.error, t.finished_at, t.expires = state, error, now, None
        self._open.pop(t.id, None)
        self._finished.append(t)
        self._event(t, owner, reason, outcome=outcome)
        self._dispatch()
        return fut

    def _lost(self, t: TaskRec, why: str) -> None:
        """The holder is gone: retry, or give the task up when its attempts are spent."""
        if t.attempt >= self.max_attempts:
            _quiet(self._end(t, "dead", "lost", why, f"{why}; gave up after {t.attempt} attempts"))
        else:
            _quiet(self._requeue(t, "lost", why, f"{why} (attempt {t.attempt} of {self.max_attempts})"))

    # --- agents come and go -------------------------------------------------------
    def on_state(self, inst: AgentInstance, prev: AgentState) -> None:
        if not inst.state.alive:
            held = self._held.get(inst.name)
            if held:
                why = f"{inst.name} {inst.state.value}" + (f" ({inst.reason})" if inst.reason else "")
                shutdown = self.sup.stopping
                for tid in sorted(held):
                    t = self._open.get(tid)
                    if t is None or t.state != "leased":
                        continue
                    if shutdown:
                        # The whole fleet is stopping: not the task's fault, so not an attempt.
                        self._give_back(t, inst.name, t.run_id, "fleet shutdown")
                    else:
                        self._lost(t, why)
                held.clear()
            return
        if inst.state is S.RUNNING:
            self._dispatch()

    async def wait_open(self) -> None:
        """Return once a task is open (queued or leased): an empty queue needs no ticking."""
        if not self._open:
            self._has_open.clear()
            await self._has_open.wait()

    def tick(self) -> None:
        """Renew the leases of live runs and take back expired ones (called about once a second)."""
        if not self._open:
            return
        now = self._clock()
        renew: list[int] = []
        expires = now + self.lease_s
        for t in list(self._open.values()):
            if t.state != "leased":
                continue
            inst = self.sup.instances.get(t.owner or "")
            live = inst is not None and inst.state.alive and inst.run is not None and inst.run.run_id == t.run_id
            if live:
                # Write the renewal only when a third of the lease has gone: cheap at any rate.
                if t.expires is None or t.expires - now < self.lease_s * 2 / 3:
                    t.expires = expires
                    renew.append(t.id)
            elif t.expires is not None and t.expires <= now:
                self._lost(t, f"lease of {t.owner} expired")
        if renew and self.store is not None:
            _quiet(self.store.task_renew(renew, expires))

    # --- reading -------------------------------------------------------------------
    def snapshot(self, states: list[str] | None = None, kind: str | None = None, n: int = 200) -> list[dict]:
        """Tasks from memory (open ones and recently finished), newest last."""
        items = sorted([*self._open.values(), *self._finished], key=lambda t: t.id)
        out = [t.wire() for t in items if (not states or t.state in states) and (not kind or t.kind == kind)]
        return out[-n:]

    def stats(self) -> dict[str, Any]:
        queued = sum(1 for t in self._open.values() if t.state == "queued")
        return {
            "queued": queued,
            "leased": len(self._open) - queued,
            "waiting_agents": len(self._waiters),
            "strategy": self.strategy,
            **{k: v for k, v in self.counts.items() if k in ("done", "failed", "dead")},
        }

    # --- events ----------------------------------------------------------------------
    def _event(self, t: TaskRec, agent: str | None, reason: str | None, **extra: Any) -> None:
        self.counts[t.state] = self.counts.get(t.state, 0) + 1
        data = {
            "id": t.id,
            "kind": t.kind,
            "state": t.state,
            "attempt": t.attempt,
            "reason": reason,
            "priority": t.priority,
            **extra,
        }
        self.sup.publish("task", agent, data)
        fire(self.sup.hooks.on_task, agent, data)


def _check_kind(kind: Any) -> str:
    if not isinstance(kind, str) or not kind.strip() or len(kind) > MAX_KIND:
        raise TaskError(f"a task kind is a non-empty string of at most {MAX_KIND} characters, not {kind!r}")
    return kind.strip()


def _check_priority(priority: Any) -> int:
    if isinstance(priority, bool) or not isinstance(priority, int):
        try:
            priority = int(priority)
        except (TypeError, ValueError):
            raise TaskError(f"priority must be an integer, not {priority!r}") from None
    return int(priority)


def _quiet(fut: asyncio.Future[Any] | None) -> None:
    """A write nobody awaits must still report its failure."""
    if fut is None:
        return

    def report(f: asyncio.Future[Any]) -> None:
        if not f.cancelled() and f.exception() is not None:
            print(f"fleet: task store write failed: {f.exception()!r}", file=sys.stderr)

    fut.add_done_callback(report)
