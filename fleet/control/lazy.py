"""A client whose connection is still being made.

The console must paint in well under half a second, but starting a fleet
(policy load, store open) takes longer than that. ``LazyClient`` satisfies
``FleetClient`` at once and makes every call wait for the connection, so the
UI can draw its frame and show "connecting" while the fleet comes up.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fleet.control.client import SocketClient


class LazyClient:
    def __init__(self, connect: Callable[[], Awaitable[SocketClient]]) -> None:
        self._connect = connect
        self._task: asyncio.Task[SocketClient] | None = None

    async def client(self) -> SocketClient:
        if self._task is None:
            self._task = asyncio.ensure_future(self._connect())
        return await asyncio.shield(self._task)

    async def call(self, op: str, **args: Any) -> Any:
        return await (await self.client()).call(op, **args)

    async def subscribe(
        self, kinds: list[str] | None = None, *, logs_max_rate: float | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        c = await self.client()
        async for msg in c.subscribe(kinds, logs_max_rate=logs_max_rate):
            yield msg

    async def close(self) -> None:
        if self._task is not None and self._task.done() and not self._task.cancelled():
            if self._task.exception() is None:
                await self._task.result().close()
        elif self._task is not None:
            self._task.cancel()
