"""Tasks per second the queue sustains end to end, through real agent processes.

Run: ``python -m bench.tasks_throughput [-n 20000] [--agents 20]``. Builds a
throw-away fleet of ``--agents`` SDK agent processes (one ``[[agent]]`` with
replicas) that each loop ``next_task`` → ``task.done``, starts it in this
process with the real store, control socket and supervisor, waits until every
agent is blocked in ``next_task``, then queues ``n`` tasks (in batches, as a
producer would) and measures until the last one is acknowledged. Every task
makes the full trip: allocation, a lease journalled in the store, the offer
over the agent's channel, the ``done`` call back, the result committed before
the agent hears back, and three persisted ``task`` events.

Prints tasks/s, the lease→done latency (p50/p95) seen by the store, and checks
that every task was done exactly once.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

AGENT = """\
async def run(ctx):
    while True:
        task = await ctx.next_task()
        await task.done()
"""


async def main(n: int, agents: int, batch: int) -> dict[str, float]:
    from fleet.gateway import FakeProvider, Gateway
    from fleet.report import percentile
    from fleet.runtime import FleetRuntime

    with tempfile.TemporaryDirectory(prefix="fleet-tasks-bench-") as tmp:
        d = Path(tmp)
        (d / "policies").mkdir()
        (d / "bench_agent.py").write_text(AGENT)
        (d / "fleet.toml").write_text(
            f'[fleet]\nname = "bench"\n\n[[agent]]\nname = "w"\nrun = "bench_agent:run"\nreplicas = {agents}\n'
            '[agent.tasks]\nkinds = ["job"]\n'
        )
        rt = FleetRuntime(d, gateway=Gateway(FakeProvider(), environ={}), watch=False)
        sup = await rt.start()
        try:
            queue = sup.services.tasks
            done = asyncio.Event()
            finished = 0

            def on_task(agent: str | None, data: dict) -> None:
                nonlocal finished
                if data["state"] == "done":
                    finished += 1
                    if finished >= n:
                        done.set()

            sup.hooks.on_task.append(on_task)
            deadline = time.monotonic() + 60
            while len(queue.waiting_agents()) < agents:  # start-up: poll, it is not what we measure
                if time.monotonic() > deadline:
                    raise SystemExit(f"only {len(queue.waiting_agents())} of {agents} agents came up")
                await asyncio.sleep(0.05)
            t0 = time.perf_counter()
            for start in range(0, n, batch):
                await queue.add_many([("job", {"i": i}, 0) for i in range(start, min(n, start + batch))])
            await asyncio.wait_for(done.wait(), timeout=max(60.0, n / 200))
            elapsed = time.perf_counter() - t0
            await rt.store.flush()
            conn = sqlite3.connect(rt.store.path)
            (n_done,) = conn.execute("SELECT COUNT(*) FROM tasks WHERE state = 'done'").fetchone()
            (n_attempts,) = conn.execute("SELECT COUNT(*) FROM task_attempts").fetchone()
            lat = [r[0] for r in conn.execute("SELECT ended_at - leased_at FROM task_attempts")]
            per_agent = dict(conn.execute("SELECT agent, COUNT(*) FROM task_attempts GROUP BY agent").fetchall())
            conn.close()
        finally:
            await rt.stop()
    if n_done != n or n_attempts != n:
        raise SystemExit(f"expected {n} tasks done once each, found {n_done} done and {n_attempts} attempts")
    return {
        "tasks_per_s": n / elapsed,
        "elapsed_s": elapsed,
        "p50_ms": (percentile(lat, 50) or 0) * 1000,
        "p95_ms": (percentile(lat, 95) or 0) * 1000,
        "agents_used": len(per_agent),
        "min_per_agent": min(per_agent.values()),
        "max_per_agent": max(per_agent.values()),
    }


def cli() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=20_000, help="tasks to run")
    ap.add_argument("--agents", type=int, default=20, help="agent processes")
    ap.add_argument("--batch", type=int, default=500, help="tasks queued per add_many")
    args = ap.parse_args()
    res = asyncio.run(main(args.n, args.agents, args.batch))
    print(
        f"machine: {platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )
    print(f"{args.n} tasks, {args.agents} SDK agent processes looping next_task -> done")
    print(f"  {res['tasks_per_s']:,.0f} tasks/s  ({res['elapsed_s']:.2f} s)")
    print(f"  lease->done latency p50 {res['p50_ms']:.2f} ms, p95 {res['p95_ms']:.2f} ms")
    print(f"  spread: {res['agents_used']} agents, {res['min_per_agent']}..{res['max_per_agent']} tasks each")
    print("  every task done exactly once: yes")
    sys.stdout.flush()


if __name__ == "__main__":
    cli()
