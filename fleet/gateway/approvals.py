"""Human approvals: an agent asks, an operator decides, silence means no.

An SDK agent about to run a tool that its policy lists under ``tools.approve``
calls :meth:`ApprovalManager.request`, which persists the request (so the CLI
and a restarted console see it), publishes an ``approval`` event (so the
console can badge it at once) and waits. :meth:`ApprovalManager.decide`,
reached from the console or ``fleet approve/deny``, persists the decision,
publishes it and wakes the waiting agent. A request nobody answers within its
timeout is denied with ``decided_by = "timeout"``, following the
"expire to deny" practice: an unattended fleet never does the risky thing.

The store and the clock are seams; :class:`InMemoryApprovalStore` is the fake.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from fleet.errors import FleetError
from fleet.records import Event

log = logging.getLogger(__name__)


class ApprovalStore(Protocol):
    """The two store methods approvals need."""

    async def add_approval(
        self, agent: str, action: str, details: dict[str, Any], timeout_s: float, policy_version: int
    ) -> int: ...

    async def decide_approval(self, id: int, decision: str, by: str, reason: str) -> None: ...


#: ``publish(event)``; may return an awaitable.
Publish = Callable[[Event], Awaitable[None] | None]


@dataclass(slots=True)
class _Pending:
    id: int
    agent: str
    action: str
    details: dict[str, Any]
    requested_at: float
    timeout_s: float
    policy_version: int
    future: asyncio.Future[tuple[bool, str, str]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "agent": self.agent,
            "action": self.action,
            "details": self.details,
            "requested_at": self.requested_at,
            "expires_at": self.requested_at + self.timeout_s,
            "timeout_s": self.timeout_s,
            "policy_version": self.policy_version,
            "state": "pending",
        }


class ApprovalManager:
    """Pending approvals of the running fleet.

    Args:
        store: persists requests and decisions (``add_approval``, ``decide_approval``).
        publish: pushes ``Event(kind="approval")`` to subscribers (console, CLI).
        clock: wall-clock seconds for timestamps (timeouts use the event loop's clock).
    """

    def __init__(
        self, store: ApprovalStore, publish: Publish, clock: Callable[[], float] = time.time
    ) -> None:
        self._store = store
        self._publish = publish
        self._clock = clock
        self._pending: dict[int, _Pending] = {}
        self._decided: set[int] = set()
        #: How many wait, kept by the loop as requests come and go: ``status`` reads it from another thread.
        self.pending_count = 0

    def pending(self) -> list[dict[str, Any]]:
        """Requests still waiting for a decision, oldest first."""
        return [p.to_dict() for p in sorted(self._pending.values(), key=lambda p: p.id)]

    async def request(
        self,
        agent: str,
        action: str,
        details: dict[str, Any],
        timeout_s: float,
        policy_version: int = 0,
    ) -> tuple[bool, str, str]:
        """Ask a human; return ``(approved, reason, decided_by)``.

        ``details`` should carry what the operator needs to decide (arguments,
        recent log lines, spend so far). Denied on timeout with
        ``decided_by = "timeout"``; if the waiting agent goes away (the task is
        cancelled) the request expires with ``decided_by = "cancelled"``.
        """
        approval_id = int(await self._store.add_approval(agent, action, details, timeout_s, policy_version))
        future: asyncio.Future[tuple[bool, str, str]] = asyncio.get_running_loop().create_future()
        pending = _Pending(
            approval_id, agent, action, details, self._clock(), timeout_s, policy_version, future
        )
        self._pending[approval_id] = pending
        self.pending_count = len(self._pending)
        await self._emit(agent, {**pending.to_dict()})
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout_s)
        except TimeoutError:
            if future.done():  # decided as the timeout fired: the decision wins
                return future.result()
            if approval_id not in self._pending:  # pragma: no cover - closed without a result
                return False, "closed", "unknown"
            reason = f"no decision within {timeout_s:g}s"
            await self._close(approval_id, "expired", "timeout", reason)
            return False, reason, "timeout"
        except asyncio.CancelledError:
            if approval_id in self._pending:
                # Persist the expiry even though this task is being cancelled.
                task = asyncio.ensure_future(
                    self._close(approval_id, "expired", "cancelled", "requester went away")
                )
                task.add_done_callback(_log_failure)
            raise

    async def decide(self, id: int, approved: bool, by: str, reason: str = "") -> dict[str, Any]:
        """Approve or deny pending request ``id``; wake the agent waiting on it.

        Raises ``FleetError`` for an unknown or already decided id.
        """
        if id not in self._pending:
            if id in self._decided:
                raise FleetError(f"approval {id} was already decided")
            raise FleetError(f"no pending approval with id {id}")
        return await self._close(id, "approved" if approved else "denied", by, reason)

    async def _close(self, id: int, state: str, by: str, reason: str) -> dict[str, Any]:
        """Take ``id`` out of pending (synchronously, so racing deciders see it), persist, publish."""
        pending = self._pending.pop(id)
        self.pending_count = len(self._pending)
        self._decided.add(id)
        record = {
            **pending.to_dict(),
            "state": state,
            "decided_by": by,
            "reason": reason,
            "decided_at": self._clock(),
        }
        if not pending.future.done():  # wake the agent before any await
            pending.future.set_result((state == "approved", reason, by))
        try:
            await self._store.decide_approval(id, state, by, reason)
        finally:
            await self._emit(pending.agent, record)
        return record

    async def _emit(self, agent: str, data: dict[str, Any]) -> None:
        try:
            out = self._publish(Event(kind="approval", agent=agent, data=data, ts=self._clock()))
            if inspect.isawaitable(out):
                await out
        except Exception:
            log.exception("publishing an approval event failed")


def _log_failure(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("persisting an expired approval failed: %s", task.exception())


class InMemoryApprovalStore:
    """Fake :class:`ApprovalStore` for tests: rows in a dict."""

    def __init__(self) -> None:
        self.rows: dict[int, dict[str, Any]] = {}
        self._next = 1

    async def add_approval(
        self, agent: str, action: str, details: dict[str, Any], timeout_s: float, policy_version: int
    ) -> int:
        id_, self._next = self._next, self._next + 1
        self.rows[id_] = {
            "id": id_,
            "agent": agent,
            "action": action,
            "details": details,
            "timeout_s": timeout_s,
            "policy_version": policy_version,
            "state": "pending",
            "decided_by": None,
            "reason": "",
        }
        return id_

    async def decide_approval(self, id: int, decision: str, by: str, reason: str) -> None:
        row = self.rows[id]
        row.update(state=decision, decided_by=by, reason=reason)
