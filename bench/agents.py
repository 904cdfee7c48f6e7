"""Agent start-up and control latency: spawn→ready, RSS per SDK agent, pause/resume.

Run by hand: ``python -m bench.agents [--agents 20] [--rounds 30]``. A real
fleet runs in-process; figures come from the supervisor's own timestamps
(spawn → the agent's hello on fd 3) and from the control socket as a client
sees it (command sent → ``paused`` state event received).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import textwrap
import time
from pathlib import Path

import psutil

from fleet.control.client import SocketClient
from fleet.gateway import FakeProvider, Gateway
from fleet.runtime import FleetRuntime

AGENT = """
async def run(ctx):
    while True:
        await ctx.sleep(3600)
"""


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


async def main(n_agents: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "policies").mkdir()
        (d / "agents").mkdir()
        (d / "agents/__init__.py").write_text("")
        (d / "agents/idle.py").write_text(AGENT)
        (d / "fleet.toml").write_text(textwrap.dedent(f"""
            [[agent]]
            name = "sdk"
            run = "agents.idle:run"
            replicas = {n_agents}

            [[agent]]
            name = "cmd"
            command = ["sleep", "3600"]
        """))
        rt = FleetRuntime(d, gateway=Gateway(FakeProvider(), environ={}), watch=False)
        sup = await rt.start(spawn=False)
        client = await SocketClient.connect(rt.server.path)
        await client.call("subscribe", kinds=["state"])
        states: asyncio.Queue[dict] = asyncio.Queue()

        async def pump() -> None:
            async for ev in client.events():
                states.put_nowait(ev["data"])

        pump_task = asyncio.ensure_future(pump())

        async def wait_state(agent: str, state: str) -> float:
            while True:
                ev = await states.get()
                if ev["agent"] == agent and ev["state"] == state:
                    return time.perf_counter()

        # 1. All SDK agents at once (a fleet starting), then one at a time (a restart).
        t0 = time.perf_counter()
        sup.spawn_all()
        waiting = {f"sdk#{i}" for i in range(1, n_agents + 1)}
        while waiting:
            ev = await states.get()
            if ev["state"] == "running":
                waiting.discard(ev["agent"])
        all_up = time.perf_counter() - t0
        burst = [i.run.ready_mono - i.run.started_mono for i in sup.instances.values()
                 if i.kind == "sdk" and i.run and i.run.ready_mono]
        rss = []
        uss = []
        for inst in sup.instances.values():
            if inst.kind == "sdk" and inst.pid:
                mi = psutil.Process(inst.pid).memory_full_info()
                rss.append(mi.rss / 2**20)
                uss.append(mi.uss / 2**20)
        single = []
        for _ in range(rounds):
            inst = sup.instances["sdk#1"]
            await client.call("restart", names=["sdk#1"])
            await wait_state("sdk#1", "running")
            single.append(inst.run.ready_mono - inst.run.started_mono)

        # 2. Pause latency: command sent → "paused" event seen by the client.
        lat: dict[str, list[float]] = {"sdk#2": [], "cmd": []}
        res_lat: dict[str, list[float]] = {"sdk#2": [], "cmd": []}
        for _ in range(rounds):
            for name in lat:
                t = time.perf_counter()
                await client.call("pause", names=[name])
                lat[name].append(await wait_state(name, "paused") - t)
                t = time.perf_counter()
                await client.call("resume", names=[name])
                res_lat[name].append(await wait_state(name, "running") - t)

        ms = 1000
        print(f"SDK agents: {n_agents} started together, all ready in {all_up * ms:.0f} ms")
        print(f"  spawn→ready (together):  median {statistics.median(burst) * ms:.1f} ms, "
              f"max {max(burst) * ms:.1f} ms")
        print(f"  spawn→ready (one alone): median {statistics.median(single) * ms:.1f} ms, "
              f"p95 {pct(single, 95) * ms:.1f} ms over {rounds} restarts")
        print(f"  RSS per SDK agent: median {statistics.median(rss):.1f} MiB (USS {statistics.median(uss):.1f} MiB)")
        for name, kind in (("sdk#2", "SDK (cooperative)"), ("cmd", "command (SIGSTOP)")):
            print(f"  pause  {kind:<18} command → paused:  median {statistics.median(lat[name]) * ms:.2f} ms, "
                  f"p95 {pct(lat[name], 95) * ms:.2f} ms")
            print(f"  resume {kind:<18} command → running: median {statistics.median(res_lat[name]) * ms:.2f} ms, "
                  f"p95 {pct(res_lat[name], 95) * ms:.2f} ms")
        pump_task.cancel()
        await client.close()
        await rt.stop()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--agents", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=30)
    a = ap.parse_args()
    asyncio.run(main(a.agents, a.rounds))
