"""Shared fixtures: real fleets in temporary directories, driven over the real socket."""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

# A loaded 2-core CI box: never fail a property test on timing.
settings.register_profile("ci", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci")

# Agents started by tests must never reach a network or a real provider.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

ROOT = Path(__file__).resolve().parent.parent


def write_fleet(root: Path, fleet_toml: str, files: dict[str, str] | None = None) -> Path:
    """Create a fleet directory: fleet.toml, policies/, and extra files (agent modules).

    Agent modules go in ``agents/`` (``{"agents/w.py": CODE}`` is ``run = "agents.w:run"``);
    its ``__init__.py`` is written for them.
    """
    root.mkdir(parents=True, exist_ok=True)
    (root / "fleet.toml").write_text(textwrap.dedent(fleet_toml))
    (root / "policies").mkdir(exist_ok=True)
    files = dict(files or {})
    if any(rel.startswith("agents/") for rel in files):
        files.setdefault("agents/__init__.py", "")
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text))
    return root


class EventLog:
    """Collects pushed events so a test can await a condition on them."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._cond = asyncio.Condition()

    async def feed(self, client: Any) -> None:
        async for msg in client.events():
            async with self._cond:
                self.events.append(msg)
                self._cond.notify_all()

    async def wait_for(self, pred: Callable[[dict[str, Any]], bool], timeout: float = 20.0) -> dict[str, Any]:
        async def _wait() -> dict[str, Any]:
            seen = 0
            async with self._cond:
                while True:
                    for ev in self.events[seen:]:
                        if pred(ev):
                            return ev
                    seen = len(self.events)
                    await self._cond.wait()

        try:
            return await asyncio.wait_for(_wait(), timeout)
        except TimeoutError:
            raise AssertionError(f"no matching event within {timeout}s; recent events:\n{self.summary()}") from None

    def summary(self, n: int = 40) -> str:
        out = []
        for e in self.events[-n:]:
            d = e["data"]
            detail = d.get("text") if e["event"] == "logs" else {k: v for k, v in d.items() if k != "ts"}
            out.append(f"  {e['event']:<8} {d.get('agent')}: {str(detail)[:200]!s}")
        return "\n".join(out)

    async def state(self, agent: str, state: str, timeout: float = 20.0) -> dict[str, Any]:
        return await self.wait_for(
            lambda e: e["event"] == "state" and e["data"]["agent"] == agent and e["data"]["state"] == state,
            timeout,
        )

    def states(self, agent: str) -> list[str]:
        return [e["data"]["state"] for e in self.events if e["event"] == "state" and e["data"]["agent"] == agent]


class RunningFleet:
    def __init__(self, runtime: Any, client: Any, events: EventLog, fleet_dir: Path) -> None:
        self.runtime = runtime
        self.client = client
        self.events = events
        self.dir = fleet_dir

    @property
    def sup(self) -> Any:
        return self.runtime.sup

    async def call(self, op: str, **args: Any) -> Any:
        return await self.client.call(op, **args)

    async def agent(self, name: str) -> dict[str, Any]:
        st = await self.call("status")
        return next(a for a in st["agents"] if a["name"] == name)

    async def wait_status(self, name: str, pred: Callable[[dict[str, Any]], bool], timeout: float = 20.0) -> dict:
        """Wait until the agent's status satisfies ``pred``; re-checked on every pushed event."""
        deadline = time.monotonic() + timeout
        while True:
            a = await self.agent(name)
            if pred(a):
                return a
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out waiting on {name}: {a}")
            n = len(self.events.events)
            try:
                await self.events.wait_for(lambda e, n=n: len(self.events.events) > n, min(remaining, 1.0))
            except AssertionError:  # what wait_for raises when nothing came: ask the status again
                pass


@pytest.fixture
async def fleet_factory(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    from fleet.control.client import SocketClient
    from fleet.gateway import FakeProvider, Gateway
    from fleet.runtime import FleetRuntime

    started: list[tuple[Any, Any, asyncio.Task[None]]] = []

    async def make(fleet_toml: str, files: dict[str, str] | None = None, *, gateway: Any = None,
                   name: str = "fleet", watch: bool = False) -> RunningFleet:
        d = write_fleet(tmp_path / name, fleet_toml, files)
        gw = gateway if gateway is not None else Gateway(FakeProvider(), environ={})
        rt = FleetRuntime(d, gateway=gw, watch=watch)
        await rt.start(spawn=False)
        client = await SocketClient.connect(rt.server.path, origin="test")
        # Subscribe before any agent runs, so no early event or line is missed.
        await client.call("subscribe")
        events = EventLog()
        feeder = asyncio.ensure_future(events.feed(client))
        started.append((rt, client, feeder))
        rt.sup.spawn_all()
        return RunningFleet(rt, client, events, d)

    yield make
    for rt, client, feeder in reversed(started):
        feeder.cancel()
        await client.close()
        await rt.stop()


def python() -> str:
    return sys.executable
