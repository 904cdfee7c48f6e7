"""A paused agent's calls over HTTP wait for its resume, through the official ``openai`` client.

A command agent paused by SIGSTOP cannot call at all; an SDK agent is paused
cooperatively and could still call the gateway's endpoints, so the server
holds such a call until the agent is resumed (then serves it), or answers
409 without retry if the agent is stopped meanwhile.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import openai
import pytest

from fleet.gateway.http.server import Caller

from .conftest import Served

USER = [{"role": "user", "content": "hello"}]


class Pause:
    """The agent's pause as the supervisor's lookup reports it (``Caller.held``)."""

    def __init__(self, served: Served) -> None:
        self.paused = True
        self.alive = True
        self.entered = asyncio.Event()
        self.holds = 0
        self._decided = asyncio.Event()
        self._lookup = served.server._lookup
        served.server._lookup = self.lookup

    def lookup(self, agent: str) -> Caller | None:
        caller = self._lookup(agent)
        if caller is None or not self.alive:
            return None
        return replace(caller, held=self.held) if self.paused else caller

    async def held(self) -> bool:
        self.holds += 1
        self.entered.set()
        await self._decided.wait()
        return self.alive

    def resume(self) -> None:
        self.paused = False
        self._decided.set()

    def stop(self) -> None:
        self.alive = False
        self._decided.set()


@pytest.mark.parametrize("stream", [False, True])
async def test_a_paused_agents_call_waits_for_its_resume(served: Served, stream: bool) -> None:
    pause = Pause(served)
    client = served.async_client()

    async def call() -> str:
        if not stream:
            r = await client.chat.completions.create(model="gpt-4o", messages=USER)
            return r.choices[0].message.content or ""
        chunks = await client.chat.completions.create(model="gpt-4o", messages=USER, stream=True)
        return "".join([c.choices[0].delta.content or "" async for c in chunks if c.choices])

    task = asyncio.ensure_future(call())
    await pause.entered.wait()
    assert not task.done() and served.records.items == []  # held: nothing reached the model
    pause.resume()
    assert "hello from the fake model" in await asyncio.wait_for(task, 10)
    assert served.records.outcomes() == ["ok"] and pause.holds == 1


async def test_a_call_held_when_its_agent_stops_is_refused_409_without_retry(served: Served) -> None:
    pause = Pause(served)
    client = served.async_client(max_retries=2)  # x-should-retry: false overrides the client's retries
    task = asyncio.ensure_future(client.chat.completions.create(model="gpt-4o", messages=USER))
    await pause.entered.wait()
    pause.stop()
    with pytest.raises(openai.ConflictError) as err:
        await asyncio.wait_for(task, 10)
    assert err.value.status_code == 409 and "stopped while this call waited" in str(err.value)
    assert pause.holds == 1 and served.records.items == []


async def test_an_unpaused_agent_is_not_held(served: Served) -> None:
    pause = Pause(served)
    pause.resume()
    r = await served.async_client().chat.completions.create(model="gpt-4o", messages=USER)
    assert r.choices[0].message.content and pause.holds == 0


SDK_AGENT = """
import asyncio, os, threading
import openai

def call_when_told(ctx):
    # A thread of the agent's own, which never passes a checkpoint: only the gateway can hold it.
    while not os.path.exists("go"):
        threading.Event().wait(0.02)
    print("CALLING", flush=True)
    r = openai.OpenAI(max_retries=0, timeout=60).chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    print("REPLY", r.choices[0].message.content, flush=True)

async def run(ctx):
    threading.Thread(target=call_when_told, args=(ctx,), daemon=True).start()
    print("READY", flush=True)
    while True:
        await ctx.sleep(0.05)
"""


async def test_a_paused_sdk_agent_is_held_by_the_fleet_until_resumed(fleet_factory) -> None:
    """The supervisor's lookup: paused -> held, resumed -> served (a real fleet, official client)."""
    f = await fleet_factory('[[agent]]\nname = "sdk"\nrun = "agents.w:run"\n', {"agents/w.py": SDK_AGENT})

    def said(word: str):
        return lambda e: e["event"] == "logs" and word in e["data"]["text"]

    await f.events.wait_for(said("READY"))
    await f.call("pause", names=["sdk"])
    await f.events.wait_for(lambda e: e["event"] == "state" and e["data"].get("state") == "paused")
    http = f.sup.services.http_gateway
    (f.dir / "go").touch()
    await f.events.wait_for(said("CALLING"))
    async with asyncio.timeout(10):  # the other process's request reaching the server: polled
        while http.held == 0:  # noqa: ASYNC110 - no event for another process's request
            await asyncio.sleep(0.01)
    assert (await f.agent("sdk"))["state"] == "paused"
    assert "REPLY" not in "".join(e["data"]["text"] for e in f.events.events if e["event"] == "logs")
    await f.call("resume", names=["sdk"])
    await f.events.wait_for(said("REPLY"), timeout=30)
    assert http.held == 0
