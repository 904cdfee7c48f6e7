"""Bench: key press (pause) -> state cell updated, under a heavy log flood.

A fake fleet (tests/console/fake_client.py) of 50 agents pushes 2 000
lines/s each (100 000 lines/s in 50 ms chunks) into the console running
headless at 160x48 with the merged log pane visible. For each sample we move
the cursor to a running agent, press ``p`` and take the time until the
agent's state cell shows "paused" (stamped by ``AgentTable.show_state``), then
resume it. The console process CPU is measured over the same window with
``time.process_time``; the fake fleet lives in the same process, so its own
generator cost is measured separately (same flood, no console) and reported.

Usage: python bench/console_keypress.py [--agents 50] [--rate 2000] [--samples 40] [--pane merged|agent]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "console"))

from fake_client import FakeFleetClient  # noqa: E402

from console.app import FleetConsole  # noqa: E402
from console.widgets.log_view import LogView  # noqa: E402


async def wait_for(pilot: object, predicate: object, timeout: float = 10.0) -> None:
    deadline = time.perf_counter() + timeout
    while not predicate():  # type: ignore[operator]
        if time.perf_counter() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.001)


async def generator_only(agents: int, rate: float, seconds: float) -> tuple[float, int]:
    client = FakeFleetClient(agents, live=True, lines_per_s=rate, store_logs=False, history=0)

    async def drain() -> None:
        async for _ in client.subscribe(None):
            pass

    task = asyncio.create_task(drain())
    await asyncio.sleep(0.5)
    cpu0, wall0, lines0 = time.process_time(), time.perf_counter(), client.lines_pushed
    await asyncio.sleep(seconds)
    cpu = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
    lines = client.lines_pushed - lines0
    task.cancel()
    await client.close()
    return cpu, int(lines / seconds)


async def first_paint() -> float:
    """Time to the first composed frame while every client call takes 3 s."""
    client = FakeFleetClient(call_delay=3.0)
    app = FleetConsole(client, embedded=True, fleet_name="demo")
    started = time.perf_counter()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        painted = time.perf_counter() - started
        app.exit()
    return painted


async def main(agents: int, rate: float, samples: int, pane: str = "merged") -> None:
    paint = await first_paint()
    base_cpu, base_lines = await generator_only(agents, rate, 3.0)

    client = FakeFleetClient(agents, live=True, lines_per_s=rate, store_logs=False, history=0)
    app = FleetConsole(client, embedded=False, fleet_name="bench")
    latencies: list[float] = []
    async with app.run_test(size=(160, 48)) as pilot:
        table = app.fleet_screen.table
        await wait_for(pilot, lambda: table.row_count == agents)
        if pane == "merged":
            await pilot.press("m")  # merged pane: every chunk of every agent is painted
        await asyncio.sleep(1.0)  # steady state
        view = app.fleet_screen.query_one(LogView)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        lines0, painted0 = app.hub.lines_in, view.painted_lines
        for i in range(samples):
            row = i % agents
            table.move_cursor(row=row)
            await pilot.pause()
            name = table.cursor_agent
            assert name is not None
            started = time.perf_counter()
            await pilot.press("p")
            await wait_for(pilot, lambda n=name: (n, "paused") in table.state_changed_at)
            latencies.append(table.state_changed_at.pop((name, "paused")) - started)
            await pilot.press("r")
            await wait_for(pilot, lambda n=name: table.state_of(n) == "running")
        wall = time.perf_counter() - wall0
        cpu = (time.process_time() - cpu0) / wall
        ingested = (app.hub.lines_in - lines0) / wall
        painted = (view.painted_lines - painted0) / wall
    await client.close()

    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))] * 1000
    print(f"agents={agents} rate={rate:.0f} lines/s/agent target={agents * rate:,.0f} lines/s")
    print(f"first paint (client calls take 3 s): {paint * 1000:.0f} ms")
    print(f"lines ingested by console: {ingested:,.0f}/s; painted in the {pane} pane: {painted:,.0f}/s")
    worst = latencies[-1] * 1000
    n = len(latencies)
    print(f"key 'p' -> state cell 'paused': p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {worst:.1f} ms (n={n})")
    print(f"process CPU (console + in-process fake fleet): {cpu * 100:.0f}% of one core")
    print(f"fake fleet generator alone: {base_cpu * 100:.0f}% of one core at {base_lines:,} lines/s")
    print(f"=> console share: ~{max(0.0, cpu - base_cpu) * 100:.0f}% of one core")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--pane", choices=("merged", "agent"), default="merged", help="log pane shown")
    args = parser.parse_args()
    asyncio.run(main(args.agents, args.rate, args.samples, args.pane))
