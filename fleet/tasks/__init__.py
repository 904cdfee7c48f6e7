"""The task queue: work items that any agent whose policy accepts their kind may take.

``attach(sup)`` gives a supervisor its queue (``sup.services.tasks``) and
the SDK calls behind ``ctx.next_task`` / ``task.done`` / ``task.fail`` /
``ctx.add_task``; the ``tasks`` / ``task_add`` control ops are declared with
the others in :mod:`fleet.control.ops`. The queue's
logic lives in :mod:`fleet.tasks.queue`; its journal in :mod:`fleet.store.tasks`.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fleet.tasks.queue import STATES, TaskError, TaskQueue, TaskRec

if TYPE_CHECKING:
    from fleet.supervisor.core import Supervisor
    from fleet.supervisor.instance import AgentInstance

#: How often leases are renewed / expired ones taken back.
TICK_S = 1.0


async def attach(sup: Supervisor, *, interval: float = TICK_S) -> TaskQueue:
    """Create and load the queue of ``sup``; register its SDK calls, hooks and timer (ops: ``tasks``, ``task_add``)."""
    queue = TaskQueue(sup)
    await queue.load()
    sup.services.tasks = queue
    sup.hooks.on_state.append(queue.on_state)
    sup.hooks.on_policy.append(lambda book: queue.wake())

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

    sup.sdk_calls.update(
        next_task=agent_next_task, task_done=agent_task_done, task_fail=agent_task_fail, add_task=agent_add_task
    )
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
