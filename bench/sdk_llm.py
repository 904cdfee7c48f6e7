"""LLM calls as an agent sees them: agent → fd 3 → gateway → litellm (mock) → agent.

Run by hand: ``python -m bench.sdk_llm [--calls 300] [--agents 20]``. One SDK
agent makes sequential ``ctx.llm`` calls with litellm's ``mock_response``
(the real litellm path, no network), timing each round trip inside the agent;
then 20 agents call as fast as they can for a fixed time and the supervisor
counts completed calls. Compare with ``python -m bench.gateway_overhead``,
which times the gateway alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import textwrap
import time
from pathlib import Path

from fleet.control.client import SocketClient
from fleet.runtime import FleetRuntime

SEQUENTIAL = """
import json, time
async def run(ctx):
    lat = []
    for _ in range({calls}):
        t = time.perf_counter()
        await ctx.llm("ping", model="gpt-4o-mini", mock_response="pong", max_tokens=16)
        lat.append(time.perf_counter() - t)
    print("LAT " + json.dumps(lat), flush=True)
    await ctx.sleep(3600)
"""

HAMMER = """
async def run(ctx):
    await ctx.sleep(0.5)
    while True:
        await ctx.llm("ping", model="gpt-4o-mini", mock_response="pong", max_tokens=16)
"""


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


async def run_fleet(toml: str, files: dict[str, str]) -> tuple[FleetRuntime, SocketClient, Path, object]:
    tmp = tempfile.TemporaryDirectory()
    d = Path(tmp.name)
    (d / "policies").mkdir()
    (d / "fleet.toml").write_text(textwrap.dedent(toml))
    for rel, text in files.items():
        (d / rel).parent.mkdir(parents=True, exist_ok=True)
        (d / rel).write_text(text)
    rt = FleetRuntime(d, watch=False)
    await rt.start(spawn=False)
    await rt.sup.gateway.ready()  # time litellm's import separately from the calls
    client = await SocketClient.connect(rt.server.path)
    return rt, client, d, tmp


async def main(calls: int, agents: int, seconds: float) -> None:
    toml = """
        [[agent]]
        name = "seq"
        run = "agents.seq:run"
        [agent.llm]
        models = ["gpt-4o-mini"]
        model = "gpt-4o-mini"
    """
    files = {"agents/__init__.py": "", "agents/seq.py": SEQUENTIAL.format(calls=calls)}
    rt, client, _, tmp = await run_fleet(toml, files)
    await client.call("subscribe", kinds=["logs"])
    rt.sup.spawn_all()
    lat: list[float] = []
    async for ev in client.events():
        text = ev["data"]["text"]
        if text.startswith("LAT "):
            lat = json.loads(text[4:].strip())
            break
    await client.close()
    await rt.stop()
    tmp.cleanup()  # type: ignore[attr-defined]
    warm = lat[10:]
    print(f"agent → gateway → litellm mock → agent, {len(warm)} sequential calls:")
    print(f"  median {statistics.median(warm) * 1000:.2f} ms, p99 {pct(warm, 99) * 1000:.2f} ms")

    toml = f"""
        [[agent]]
        name = "hammer"
        run = "agents.hammer:run"
        replicas = {agents}
        [agent.llm]
        models = ["gpt-4o-mini"]
        model = "gpt-4o-mini"
    """
    rt, client, _, tmp = await run_fleet(toml, {"agents/__init__.py": "", "agents/hammer.py": HAMMER})
    counted = 0
    started = 0.0

    def on_usage(rec: object) -> None:
        nonlocal counted
        if started:
            counted += 1

    rt.sup.hooks.on_usage.append(on_usage)
    rt.sup.spawn_all()
    await asyncio.sleep(3)  # let every agent start and warm up
    started = time.perf_counter()
    await asyncio.sleep(seconds)
    elapsed = time.perf_counter() - started
    done = counted
    await client.close()
    await rt.stop()
    tmp.cleanup()  # type: ignore[attr-defined]
    print(f"{agents} agents calling as fast as they can for {elapsed:.1f} s: {done / elapsed:.0f} calls/s "
          f"through the gateway (each recorded in the store)")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--agents", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=10)
    a = ap.parse_args()
    asyncio.run(main(a.calls, a.agents, a.seconds))
