"""Bench: ``enter`` on an agent -> its detail screen shown and idle, and ``escape`` back.

A fake fleet (tests/console/fake_client.py) of 50 agents with history, optionally
pushing a live flood, drives the console headless at 160x48. Each sample opens
the detail screen of the agent under the cursor (moving the cursor each time, or
with ``--same`` reopening one agent, whose screen the console keeps) and goes
back, timing: key -> screen on
top, key -> app idle (messages processed, refresh done), and the console's CPU
per round trip (``time.process_time``; the fake fleet's own generator runs in
the same process and is small next to it).

With ``--rest S`` the cursor rests S seconds on the next agent before ``enter``, long
enough for the console to build that agent's screen ahead (``prepare_detail``).

Usage: python -m bench.console_detail [--agents 50] [--rate 0] [--samples 20] [--same] [--rest 0.6]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "console"))

from fake_client import FakeFleetClient  # noqa: E402

from console.app import FleetConsole  # noqa: E402
from console.screens.agent import AgentScreen  # noqa: E402


async def until(predicate: object, timeout: float = 10.0) -> None:
    deadline = time.perf_counter() + timeout
    while not predicate():  # type: ignore[operator]
        if time.perf_counter() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.0005)


async def run(agents: int, rate: float, samples: int, same: bool = False, rest: float = 0.0) -> dict[str, list[float]]:
    client = FakeFleetClient(agents, live=rate > 0, lines_per_s=rate or 1.0, history=500)
    app = FleetConsole(client, embedded=False, fleet_name="bench")
    out: dict[str, list[float]] = {"open_screen": [], "open_idle": [], "back_screen": [], "back_idle": [], "cpu": []}
    async with app.run_test(headless=True, size=(160, 48)) as pilot:
        await pilot.pause()
        await asyncio.sleep(1.0)  # let the first load and paint settle (warm-up, not synchronisation)
        for i in range(samples + 2):
            if not same:
                await pilot.press("down")
                await pilot.pause()
                if rest:
                    await asyncio.sleep(rest)  # the operator reads the row: the console prepares its screen
            c0 = time.process_time()
            for key, want, screen_key, idle_key in (
                ("enter", True, "open_screen", "open_idle"),
                ("escape", False, "back_screen", "back_idle"),
            ):
                t0 = time.perf_counter()
                await pilot.press(key)
                await until(lambda want=want: isinstance(app.screen, AgentScreen) == want)
                t1 = time.perf_counter()
                await pilot.pause()
                t2 = time.perf_counter()
                if i >= 2:  # the first two are warm-up (imports, first-time styles)
                    out[screen_key].append((t1 - t0) * 1e3)
                    out[idle_key].append((t2 - t0) * 1e3)
            if i >= 2:
                out["cpu"].append((time.process_time() - c0) * 1e3)
    await client.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--agents", type=int, default=50)
    ap.add_argument("--rate", type=float, default=0.0, help="live lines/s per agent (0: a quiet fleet)")
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--same", action="store_true", help="reopen the same agent each time (a kept screen)")
    ap.add_argument("--rest", type=float, default=0.0, help="s the cursor rests on the next agent before enter")
    a = ap.parse_args()
    res = asyncio.run(run(a.agents, a.rate, a.samples, a.same, a.rest))
    which = "the same agent" if a.same else "a new agent each time"
    if a.rest and not a.same:
        which += f", the cursor resting {a.rest:g} s on it first"
    print(f"{a.agents} agents, {a.rate:g} lines/s each, {a.samples} round trips to {which} (ms, median / p90 / max):")
    for key, label in (
        ("open_screen", "enter -> detail on top"),
        ("open_idle", "enter -> detail idle"),
        ("back_screen", "escape -> fleet on top"),
        ("back_idle", "escape -> fleet idle"),
        ("cpu", "console CPU per round trip"),
    ):
        v = sorted(res[key])
        p90 = v[int(0.9 * (len(v) - 1))]
        print(f"  {label:28s} {statistics.median(v):7.1f} {p90:7.1f} {v[-1]:7.1f}")


if __name__ == "__main__":
    main()
