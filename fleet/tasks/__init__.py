"""The task queue: work items that any agent whose policy accepts their kind may take.

``attach(sup, ops)`` gives a supervisor its queue (``sup.extensions["tasks"]``),
the SDK calls behind ``ctx.next_task`` / ``task.done`` / ``task.fail`` /
``ctx.add_task`` and the ``tasks`` / ``task_add`` control ops. The queue's
logic lives in :mod:`fleet.tasks.queue`; its journal in :mod:`fleet.store.tasks`.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fleet.tasks.queue import STATES, TaskError, TaskQueue, TaskRec

if TYPE_CHECKING:
    from fleet.control.ops import Operations
    from fleet.supervisor.core import Supervisor
    from fleet.supervisor.instance import AgentInstance

#: How often leases are renewed / expired ones taken back.
TICK_S = 1.0


async def attach(sup: Supervisor, ops: Operations, *, interval: float = TICK_S) -> TaskQueue:
    """Create and load the queue of ``sup``; register its SDK calls, ops, hooks and timer."""
    queue = TaskQueue(sup)
    await queue.load()
    sup.extensions["tasks"] = queue
    sup.add_hook("on_state", queue.on_state)
    sup.add_hook("on_policy", lambda book: queue.wake())

    async def agent_next_task(inst: AgentInstance, args: dict[str, Any], push: Callable[..., None]) -> Any:
        kinds = args.get("kinds")
        if kinds is not None and (not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds)):
            raise TaskError("next_task: 'kinds' must be a list of strings")
        timeout = args.get("timeout")
        return await queue.next_for(inst, kinds, None if timeout is None else float(timeout))

    async def agent_task_done(inst: AgentInstance, args: dict[str, Any], push: Callable[..., None]) -> Any:
        return await queue.done(inst, _id(args), args.get("result"))

    async def agent_task_fail(inst: AgentInstance, args: dict[str, Any], push: Callable[..., None]) -> Any:
        return await queue.fail(inst, _id(args), str(args.get("error") or "failed"), bool(args.get("retry", True)))

    async def agent_add_task(inst: AgentInstance, args: dict[str, Any], push: Callable[..., None]) -> Any:
        t = await queue.add(args.get("kind"), args.get("payload"), args.get("priority") or 0, by=inst.name,
                            unique=bool(args.get("unique")))
        return {"id": t.id}

    sup.extensions.update(
        agent_next_task=agent_next_task,
        agent_task_done=agent_task_done,
        agent_task_fail=agent_task_fail,
        agent_add_task=agent_add_task,
    )

    async def op_tasks(state: str | list[str] | None = None, kind: str | None = None, n: int = 200) -> dict[str, Any]:
        states = [state] if isinstance(state, str) else list(state or [])
        for s in states:
            if s not in STATES:
                raise TaskError(f"unknown task state {s!r} (states: {', '.join(STATES)})")
        n = max(1, min(int(n), 100_000))
        if sup.store is not None:
            items = await sup.store.tasks(states or None, kind, n)
        else:
            items = queue.snapshot(states or None, kind, n)
        return {"tasks": items, "stats": queue.stats()}

    async def op_task_add(kind: str, payload: Any = None, priority: int = 0) -> dict[str, Any]:
        t = await queue.add(kind, payload, priority, by="operator")
        return {"id": t.id, "kind": t.kind, "priority": t.priority}

    ops.register("tasks", op_tasks)
    ops.register("task_add", op_task_add)
    sup.spawn(_ticker(queue, interval))
    return queue


def _id(args: dict[str, Any]) -> int:
    try:
        return int(args["id"])
    except (KeyError, TypeError, ValueError):
        raise TaskError("a task call needs the task's 'id'") from None


async def _ticker(queue: TaskQueue, interval: float) -> None:
    while True:
        await queue.wait_open()  # an idle fleet with no tasks is not woken every second
        await asyncio.sleep(interval)  # a periodic timer, not synchronisation
        try:
            queue.tick()
        except Exception as exc:
            print(f"fleet: task lease check failed: {exc!r}", file=sys.stderr)


__all__ = ["STATES", "TaskError", "TaskQueue", "TaskRec", "attach"]
